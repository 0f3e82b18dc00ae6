// A small promise wrapper over IndexedDB: one database per installation, a few object stores.
// No framework, no business logic: transactions in, promises out. Works in the browser and in
// node with fake-indexeddb (tests/js/).

export const DB_NAME = "tournee";
export const DB_VERSION = 1;

// meta: key → value (client_id, token, cookie, next_mutation_id, last_sync_at, …)
// replica: "work_order/12" → {key, server, local, pending} ; "service_type/x", "outcome/x" → {key, server}
// outbox: mutation id → {id, name, args, base_version, client_ts, acked, work_order_id}
// dead: auto id → {mutation, reason, at}          (writes the server refused: shown to the crew)
// notices: auto id → {mutation_id, name, outcome, code, conflict_id, work_order_id, at, seen}
// photos: photo_id → {photo_id, work_order_id, sha256, blob, size, state, upload_id, offset, …}
// details: work order id → the online-only detail (linked requests, history), cached for offline
export const STORES = ["meta", "replica", "outbox", "dead", "notices", "photos", "details"];

export function openDatabase(name = DB_NAME, factory = globalThis.indexedDB) {
  return new Promise((resolve, reject) => {
    const request = factory.open(name, DB_VERSION);
    request.onupgradeneeded = () => {
      const db = request.result;
      if (!db.objectStoreNames.contains("meta")) db.createObjectStore("meta");
      if (!db.objectStoreNames.contains("replica")) db.createObjectStore("replica", { keyPath: "key" });
      if (!db.objectStoreNames.contains("outbox")) {
        const outbox = db.createObjectStore("outbox", { keyPath: "id" });
        outbox.createIndex("work_order_id", "work_order_id");
      }
      if (!db.objectStoreNames.contains("dead")) db.createObjectStore("dead", { keyPath: "seq", autoIncrement: true });
      if (!db.objectStoreNames.contains("notices")) db.createObjectStore("notices", { keyPath: "seq", autoIncrement: true });
      if (!db.objectStoreNames.contains("photos")) db.createObjectStore("photos", { keyPath: "photo_id" });
      if (!db.objectStoreNames.contains("details")) db.createObjectStore("details", { keyPath: "id" });
    };
    request.onsuccess = () => {
      const db = request.result;
      // Another tab upgrading the schema: let it, this tab reloads.
      db.onversionchange = () => db.close();
      resolve(db);
    };
    request.onerror = () => reject(request.error);
    request.onblocked = () => reject(new Error("indexeddb_blocked"));
  });
}

export function promisify(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/**
 * Run `work(stores, tx)` in one readwrite (or readonly) transaction over `storeNames`.
 * Resolves with work()'s result once the transaction has COMMITTED (oncomplete), so a caller
 * never reports a write as saved before it is durable. Any error aborts the whole transaction.
 * `work` must only await IndexedDB requests of this transaction (no fetch, no timers).
 */
export function transaction(db, storeNames, mode, work) {
  return new Promise((resolve, reject) => {
    const tx = db.transaction(storeNames, mode, { durability: "strict" });
    const stores = {};
    for (const name of storeNames) stores[name] = tx.objectStore(name);
    let result;
    let failed = null;
    tx.oncomplete = () => resolve(result);
    tx.onabort = () => reject(failed || tx.error || new Error("transaction_aborted"));
    tx.onerror = () => {};
    Promise.resolve()
      .then(() => work(stores, tx))
      .then(
        (value) => {
          result = value;
        },
        (error) => {
          failed = error;
          try {
            tx.abort();
          } catch {
            /* already finished */
          }
        },
      );
  });
}

export const get = (store, key) => promisify(store.get(key));
export const getAll = (store, query) => promisify(store.getAll(query));
export const put = (store, value, key) => promisify(key === undefined ? store.put(value) : store.put(value, key));
export const del = (store, key) => promisify(store.delete(key));
export const clear = (store) => promisify(store.clear());

export async function getMeta(db, key, fallback = null) {
  const value = await transaction(db, ["meta"], "readonly", ({ meta }) => get(meta, key));
  return value === undefined ? fallback : value;
}

export function setMeta(db, values) {
  return transaction(db, ["meta"], "readwrite", async ({ meta }) => {
    for (const [key, value] of Object.entries(values)) {
      if (value === undefined || value === null) await del(meta, key);
      else await put(meta, value, key);
    }
  });
}

export function readAll(db, storeName) {
  return transaction(db, [storeName], "readonly", (stores) => getAll(stores[storeName]));
}
