// Crew app: sign in once per device, today's work list, work order detail and field actions.
// Every action is a mutation queued in the outbox (same IndexedDB transaction as its optimistic
// change); the sync engine sends it. Works with no network for a whole shift.

import { h, clear, formatTime, icon } from "../dom.js";
import { t, getLang } from "../i18n.js";
import { openDatabase, getMeta, setMeta, transaction, put } from "../idb.js";
import { enqueue, markSeen, newUuid, newClientId, pendingCount, readDeadLetters, readNotices } from "../outbox.js";
import { readWorkOrders, readWorkOrder, readReference, sortWorkList, isOverdue, isOpen } from "../replica.js";
import { addPhoto, currentPosition, readPhotos, waitingPhotos } from "../photos.js";
import { SyncEngine } from "../sync.js";
import { crewMoves, transitionTable } from "../transitions.js";
import { apiPost, apiGet, openEventStream } from "../api.js";

let db = null;
let engine = null;
let screen = null; // {root, id}
let wired = false;

export async function crewDatabase() {
  if (!db) db = await openDatabase();
  return db;
}

async function ensureEngine() {
  await crewDatabase();
  if (!engine) {
    engine = new SyncEngine(db, {
      onChange: (kind) => {
        refresh(kind);
        if (kind === "data") prefetchDetails();
      },
    });
  }
  if (!wired) {
    wired = true;
    // Sync on reconnect, when the app comes back to the foreground, and on its own timer.
    window.addEventListener("online", () => engine.sync());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") engine.sync();
    });
    // Background Sync relayed by the worker (sw.js): sync both lanes, then answer it.
    navigator.serviceWorker?.addEventListener("message", (event) => {
      if (event.data?.type !== "sync") return;
      Promise.all([engine.sync(), engine.photos()]).finally(() => event.ports[0]?.postMessage({ done: true }));
    });
  }
  return engine;
}

// What changed since the last frame: the status bar always redraws; the main view only when
// data changed (never under the fingers of someone typing: then it waits for the next change).
let refreshQueued = false;
let dataChanged = false;
function refresh(kind = "status") {
  if (kind === "data") dataChanged = true;
  if (refreshQueued || !screen) return;
  refreshQueued = true;
  requestAnimationFrame(async () => {
    refreshQueued = false;
    if (!screen) return;
    await renderStatus();
    const active = document.activeElement;
    const typing = active && screen.root.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName) &&
      (active.value || "") !== "";
    if (dataChanged && !typing) {
      dataChanged = false;
      await renderMain();
    }
    updateProgress();
  });
}

export async function renderCrew(root, { id } = {}) {
  await ensureEngine();
  screen = { root, id };
  clear(root);
  const token = await getMeta(db, "token");
  if (!token) return renderSignIn(root);
  root.append(h("section", { id: "sync-status", class: "status-bar", "aria-live": "polite" }), h("div", { id: "crew-main" }));
  await renderStatus();
  await renderMain();
  if (!id && !performance.getEntriesByName("tournee:crew-list").length) performance.mark("tournee:crew-list"); // cold start, measured by tests and bench
  engine.sync();
  listenForHints(token);
}

// Change hints (GET /sync/v1/events, SSE): pull now when the server says the scope changed.
// Hints may be lost: the engine's periodic pull stays the safety net.
let hints = null;
function listenForHints(token) {
  if (hints || !("EventSource" in window)) return;
  hints = openEventStream("/sync/v1/events", token, {
    pull: () => engine.sync(),
    hello: () => engine.sync(), // pull once after every (re)connect
  }, {
    // signed out or revoked: the engine's next sync meets the same 401 and shows the sign-in
    onAuthLost: () => { hints = null; engine.sync(); },
  });
}

async function renderSignIn(root) {
  const error = await getMeta(db, "auth_error");
  const pending = await pendingCount(db);
  const message = h("p", { class: "message", role: "status" });
  const form = h("form", { class: "card stack", id: "crew-signin" },
    h("h2", { i18n: "crew_signin_title" }),
    error ? h("p", { class: "alert", role: "alert", i18n: error === "token_revoked" ? "crew_revoked" : "crew_signed_out" }) : null,
    pending ? h("p", { class: "notice", i18n: "crew_pending_kept", args: { count: pending } }) : null,
    h("label", { i18n: "field_username", for: "crew-username" }),
    h("input", { id: "crew-username", name: "username", autocomplete: "username", required: true, autocapitalize: "none" }),
    h("label", { i18n: "field_password", for: "crew-password" }),
    h("input", { id: "crew-password", name: "password", type: "password", autocomplete: "current-password", required: true }),
    h("label", { i18n: "field_device_label", for: "crew-device" }),
    h("input", { id: "crew-device", name: "device_label", required: true, value: t("default_device_label") }),
    h("button", { type: "submit", class: "primary", i18n: "action_sign_in" }),
    message,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    const answer = await apiPost("/api/v1/auth/login", data);
    if (answer.status === 0) return setText(message, "error_offline_signin");
    if (!answer.ok) return setText(message, "error_signin_failed");
    if (answer.body.kind !== "device") return setText(message, "error_not_crew");
    const previousUser = await getMeta(db, "username");
    let clientId = await getMeta(db, "client_id");
    if (previousUser && previousUser !== answer.body.user.username) {
      if (await pendingCount(db)) return setText(message, "error_other_user_pending");
      clientId = null; // a different person: a new client_id (mutation ids belong to a user)
      await transaction(db, ["replica", "meta"], "readwrite", async ({ replica, meta }) => {
        replica.clear();
        await put(meta, 1, "next_mutation_id");
        meta.delete("cookie");
      });
    }
    await setMeta(db, {
      token: answer.body.token,
      username: answer.body.user.username,
      crew_id: answer.body.user.crew_id ?? null,
      client_id: clientId || newClientId(),
      auth_error: null,
    });
    renderCrew(screen.root, { id: screen.id });
  });
  root.append(form);
}

function setText(el, key, args) {
  el.textContent = t(key, args);
  el.dataset.i18n = key;
}

// The status area, on every crew screen, kept to two short lines: network, edits waiting,
// photos waiting (count and MB), the photo being sent with its progress, the last successful
// sync, and a line when something was refused.
async function renderStatus() {
  const bar = document.getElementById("sync-status");
  if (!bar) return;
  const pending = await pendingCount(db);
  const lastSync = await getMeta(db, "last_sync_at");
  const upgrade = await getMeta(db, "upgrade");
  const photos = await readPhotos(db);
  const waiting = waitingPhotos(photos);
  const refused = (await readNotices(db)).filter((n) => !n.seen && n.outcome === "rejected").length +
    (await readDeadLetters(db)).filter((d) => !d.seen).length + photos.filter((p) => p.state === "refused" && !p.seen).length;
  const online = navigator.onLine;
  const current = engine.current;
  const index = current ? photos.filter((p) => p.state !== "confirmed" && p.state !== "refused")
    .sort((x, y) => String(x.captured_at).localeCompare(String(y.captured_at))).findIndex((p) => p.photo_id === current.photo_id) + 1 : 0;
  clear(bar).append(...[
    h("div", { class: "status-text" },
      h("div", { class: "status-line" },
        h("span", { id: "net-state", class: online ? "ok" : "warn", i18n: online ? "status_online" : "status_offline" }),
        h("span", { id: "pending-count", class: pending ? "warn" : null, "data-count": pending, i18n: "status_pending", args: { count: pending } }),
        h("span", { id: "photos-waiting", class: waiting.count ? "warn" : null, "data-count": waiting.count, "data-bytes": waiting.bytes,
          i18n: "status_photos_waiting", args: { count: waiting.count, size: formatMb(waiting.bytes) } })),
      h("div", { class: "status-line small" },
        h("span", { id: "last-sync", i18n: "status_last_sync", args: { time: lastSync ? shortTime(lastSync) : t("never") } }),
        // while a photo is sent, its progress takes the place of the (then secondary) sync state
        h("span", { id: "sync-state", "data-state": engine.state, hidden: !!current, i18n: `sync_state_${engine.state}` }),
        current ? h("span", { id: "photo-sending", "data-photo-id": current.photo_id, i18n: "status_photo_sending",
          args: { index, count: waiting.count, percent: Math.floor((100 * current.offset) / Math.max(1, current.length)) } }) : null)),
    h("button", { id: "sync-now", class: "small", i18n: "action_sync_now", onclick: () => { engine.sync(); engine.photos(); } }),
    current ? h("progress", { id: "photo-progress", class: "thin wide", max: current.length, value: current.offset }) : null,
    refused ? h("a", { id: "refused-alert", class: "alert small wide", href: "#/equipe", "data-count": refused, i18n: "status_refused", args: { count: refused } }) : null,
    upgrade ? h("span", { class: "alert small wide", i18n: "status_upgrade" }) : null,
  ].filter(Boolean));
  if (engine.state === "signed_out" && !(await getMeta(db, "token"))) renderCrew(screen.root, { id: screen.id });
}

/** Today: the time only; another day: date and time. */
function shortTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "—";
  if (date.toDateString() !== new Date().toDateString()) return formatTime(iso, getLang());
  return date.toLocaleTimeString(getLang() === "en" ? "en-CA" : "fr-CA", { hour: "2-digit", minute: "2-digit" });
}

function formatMb(bytes) {
  return (bytes / (1024 * 1024)).toLocaleString(getLang() === "en" ? "en-CA" : "fr-CA", { maximumFractionDigits: 1, minimumFractionDigits: bytes ? 1 : 0 });
}

async function renderMain() {
  const main = document.getElementById("crew-main");
  if (!main) return;
  const content = screen.id ? await detailView(screen.id) : await listView();
  clear(main).append(content);
}

function statusBadge(status) {
  return h("span", { class: `badge status-${status}`, "data-status": status, i18n: `status_${status}` });
}

function serviceName(types, code) {
  const type = types.find((s) => s.code === code);
  if (!type) return h("span", { text: code });
  return h("span", { text: getLang() === "en" ? type.name_en : type.name_fr });
}

function typeName(types, code) {
  const type = types.find((s) => s.code === code);
  if (!type) return code || "";
  return getLang() === "en" ? type.name_en : type.name_fr;
}

/** The heading of a job: its own title, or the service's name (in the chosen language) when the
 * title is just that name (in either language) — never the same words twice. */
function jobTitle(types, order) {
  const type = types.find((s) => s.code === order.service_code);
  const generic = !order.title || (type && (order.title === type.name_fr || order.title === type.name_en));
  return { title: generic ? typeName(types, order.service_code) || order.address : order.title, generic };
}

async function listView() {
  const orders = (await readWorkOrders(db)).filter((o) => !o.reassigned_away);
  const types = await readReference(db, "service_type");
  const open = sortWorkList(orders.filter((o) => isOpen(o.status)));
  const closed = orders.filter((o) => !isOpen(o.status));
  // One compact card per job: priority and title (the service name only when the title says
  // something else), the address, then status and due time on their own line: nothing overlaps
  // at 360 px and four or more jobs fit on a phone screen.
  const item = (o) => {
    const { title } = jobTitle(types, o);
    return h("li", {},
      h("a", { class: "work-item", href: `#/equipe/bt/${o.id}`, "data-work-order": o.id },
        h("span", { class: "work-title" },
          h("span", { class: `priority p${o.priority}`, i18n: "priority_short", args: { priority: o.priority } }),
          h("strong", { class: "one-line", text: title })),
        h("span", { class: "one-line", text: o.address }),
        h("span", { class: "work-meta" },
          statusBadge(o.status),
          isOverdue(o) ? h("span", { class: "badge overdue", i18n: "overdue" }) : null,
          h("span", { class: "due", i18n: "due_short", args: { time: o.due_at ? shortTime(o.due_at) : "—" } }))));
  };
  return h("div", { class: "stack" },
    await noticesView(),
    h("h2", { i18n: "crew_today" }),
    open.length ? h("ul", { class: "work-list", id: "work-list" }, open.map(item)) : h("p", { i18n: "crew_no_work" }),
    closed.length ? h("h3", { i18n: "crew_recently_closed" }) : null,
    closed.length ? h("ul", { class: "work-list" }, closed.map(item)) : null,
  );
}

let noticesOpen = null;

// Notices (conflicts, refused edits, refused photos) fold into one line; each can be marked
// read ("OK"), which hides it (it stays in IndexedDB).
async function noticesView(workOrderId = null) {
  const mine = (id) => workOrderId == null || id === workOrderId;
  const notices = (await readNotices(db)).filter((n) => !n.seen && mine(n.work_order_id));
  const dead = (await readDeadLetters(db)).filter((d) => !d.seen && mine(d.mutation.work_order_id));
  const photos = (await readPhotos(db)).filter((p) => p.state === "refused" && !p.seen && mine(p.work_order_id));
  const count = notices.length + dead.length + photos.length;
  if (!count) return null;
  const dismiss = (keys) => async (event) => {
    event.preventDefault();
    await markSeen(db, keys);
    refresh("data");
    renderStatus();
  };
  const ok = (keys) => h("button", { class: "small", "i18n-aria-label": "action_dismiss_notice", i18n: "action_ok", onclick: dismiss(keys) });
  // stays open (or closed) across redraws: a sync must not fold it under the crew's finger
  const open = noticesOpen ?? workOrderId != null;
  return h("details", { class: "card notices", id: "notices", open, ontoggle: (e) => { noticesOpen = e.target.open; } },
    h("summary", { i18n: "crew_notices_title", args: { count } }),
    h("ul", {},
      notices.map((n) => h("li", { class: `notice-${n.outcome} notice-row`, "data-code": n.code ?? "" },
        h("span", { class: "grow" },
          h("span", { i18n: n.outcome === "rejected" ? "notice_rejected" : "notice_conflict", args: { id: n.work_order_id } }),
          " ", h("span", { i18n: `mutation_${n.name.split("@")[0].split(".")[1]}` }),
          " — ", h("span", { i18n: knownCode(n.code) })),
        ok({ notices: [n.seq] }))),
      dead.map((d) => h("li", { class: "dead-letter notice-row", "data-code": d.reason.code ?? "" },
        h("span", { class: "grow" },
          h("span", { i18n: "notice_dead", args: { id: d.mutation.work_order_id ?? "—" } }),
          " ", h("span", { i18n: `mutation_${d.mutation.name.split("@")[0].split(".")[1] ?? "unknown"}` })),
        ok({ dead: [d.seq] }))),
      photos.map((p) => h("li", { class: "dead-letter notice-row" },
        h("span", { class: "grow", i18n: "notice_photo_refused", args: { id: p.work_order_id } }),
        ok({ photos: [p.photo_id] })))),
    count > 1 ? h("button", { class: "small", id: "dismiss-all", i18n: "action_dismiss_all",
      onclick: dismiss({ notices: notices.map((n) => n.seq), dead: dead.map((d) => d.seq), photos: photos.map((p) => p.photo_id) }) }) : null);
}

const CODES = new Set([
  "status_superseded", "completion_not_applied", "completion_duplicate", "suggestion", "reassigned_away",
  "work_order_unknown", "not_your_crew", "args_invalid", "mutation_unknown", "mutation_version_unsupported",
  "outcome_unknown", "status_not_settable", "uuid_reused", "material_entry_unknown", "material_already_voided",
  "illegal_transition", "role_not_allowed", "crew_required", "outcome_required", "reason_required",
]);
function knownCode(code) {
  return CODES.has(code) ? `code_${code}` : "code_other";
}

const OUTCOMES = ["fixed", "no_condition_found", "duplicate", "not_city_responsibility", "referred", "unable_to_access", "partially_done"];
const MATERIALS = [["salt", "kg"], ["sand", "kg"], ["abrasive", "kg"], ["bags", "unit"], ["bins", "unit"], ["other", "unit"]];

async function queue(order, name, args) {
  await enqueue(db, { name, args: { work_order_id: order.id, ...args }, base_version: order.version ?? null });
  await renderMain();
  await renderStatus();
  engine.sync(); // sync after each change
  askBackgroundSync();
}

// Where the browser has Background Sync, ask it to wake us when the link is back; the app's own
// triggers (online, visible, timers) work without it.
function askBackgroundSync() {
  navigator.serviceWorker?.ready.then((registration) => registration.sync?.register("tournee-sync")).catch(() => {});
}

async function detailView(id) {
  const order = await readWorkOrder(db, id);
  if (!order) {
    return h("div", { class: "stack" }, h("a", { href: "#/equipe", class: "button", i18n: "action_back" }), h("p", { i18n: "crew_order_missing" }));
  }
  const types = await readReference(db, "service_type");
  const outcomes = await readReference(db, "outcome");
  if (screen.loaded !== id) {
    screen.loaded = id;
    loadDetail(id);
  }
  const cached = await transaction(db, ["details"], "readonly", ({ details }) => new Promise((resolve) => {
    const r = details.get(id); r.onsuccess = () => resolve(r.result); r.onerror = () => resolve(null);
  }));
  const readOnly = order.reassigned_away;
  const actions = h("div", { class: "actions", id: "actions" });
  // Only the moves the server's table allows from this status (pwa/js/transitions.js).
  const moves = readOnly ? [] : crewMoves(order.status, transitionTable(await readReference(db, "crew_transition")));
  for (const move of moves.filter((m) => m.kind === "set_status")) {
    if (move.target === "on_hold") {
      const reason = h("input", { id: "hold-reason", "i18n-placeholder": "field_hold_reason", "i18n-aria-label": "field_hold_reason", maxlength: 500 });
      actions.append(h("form", { class: "inline", onsubmit: (e) => { e.preventDefault(); queue(order, "workorder.set_status@1", { status: "on_hold", reason: reason.value || undefined }); } },
        reason, h("button", { id: "act-on-hold", type: "submit", i18n: "action_on_hold" })));
    } else {
      actions.append(h("button", { id: `act-${move.target.replace("_", "-")}`, class: "primary", "data-move": move.target, i18n: `action_${move.target}`,
        onclick: () => queue(order, "workorder.set_status@1", { status: move.target }) }));
    }
  }
  let completeForm = null;
  if (moves.some((m) => m.kind === "complete")) {
    const outcomeSelect = h("select", { id: "complete-outcome", name: "outcome", required: true, "i18n-aria-label": "field_outcome" },
      h("option", { value: "", i18n: "choose_outcome" }),
      OUTCOMES.map((code) => h("option", { value: code, i18n: `outcome_${code}` })));
    const note = h("textarea", { id: "complete-note", name: "note", maxlength: 2000, rows: 2, "i18n-placeholder": "field_outcome_note", "i18n-aria-label": "field_outcome_note" });
    completeForm = h("form", { class: "card stack", id: "complete-form", onsubmit: (e) => {
      e.preventDefault();
      if (!outcomeSelect.value) return;
      queue(order, "workorder.complete@1", { outcome: outcomeSelect.value, note: note.value || undefined, completed_at: new Date().toISOString() });
    } },
    h("h3", { i18n: "complete_title" }), h("label", { for: "complete-outcome", i18n: "field_outcome" }), outcomeSelect, note,
    h("button", { type: "submit", class: "primary", id: "act-complete", i18n: "action_complete" }));
  }
  const noteInput = h("textarea", { id: "note-body", maxlength: 2000, rows: 2, required: true, "i18n-placeholder": "field_note", "i18n-aria-label": "field_note" });
  const noteForm = h("form", { class: "stack", id: "note-form", onsubmit: (e) => {
    e.preventDefault();
    const body = noteInput.value.trim();
    if (body) queue(order, "workorder.add_note@1", { note_id: newUuid(), body });
  } }, noteInput, h("button", { type: "submit", id: "act-add-note", i18n: "action_add_note" }));

  const materialCode = h("select", { id: "material-code", "i18n-aria-label": "field_material" }, MATERIALS.map(([code]) => h("option", { value: code, i18n: `material_${code}` })));
  const quantity = h("input", { id: "material-quantity", type: "number", min: "0.01", step: "any", required: true, inputmode: "decimal", "i18n-aria-label": "field_quantity", "i18n-placeholder": "field_quantity" });
  const materialForm = h("form", { class: "inline", id: "material-form", onsubmit: (e) => {
    e.preventDefault();
    const q = Number(quantity.value);
    if (!(q > 0)) return;
    const unit = MATERIALS.find(([code]) => code === materialCode.value)[1];
    queue(order, "workorder.add_material@1", { entry_id: newUuid(), material_code: materialCode.value, quantity: q, unit });
  } }, materialCode, quantity, h("button", { type: "submit", id: "act-add-material", i18n: "action_add_material" }));

  const photoInput = h("input", { id: "photo-input", type: "file", accept: "image/*", capture: "environment", class: "visually-hidden" });
  photoInput.addEventListener("change", async () => {
    const file = photoInput.files[0];
    if (!file) return;
    const position = await currentPosition(); // where the crew stands when the photo is taken
    await addPhoto(db, order, file, position);
    await renderMain();
    await renderStatus();
    engine.sync();
    askBackgroundSync();
  });
  const localPhotos = (await readPhotos(db)).filter((p) => p.work_order_id === order.id);
  const voided = new Set((order.materials || []).map((m) => m.voids).filter(Boolean));

  return h("div", { class: "stack", id: "work-order-detail", "data-work-order": order.id },
    h("a", { href: "#/equipe", class: "button", id: "back-to-list", i18n: "action_back" }),
    h("section", { class: "card stack" },
      h("h2", { text: jobTitle(types, order).title }),
      h("div", { class: "row" }, statusBadge(order.status), isOverdue(order) ? h("span", { class: "badge overdue", i18n: "overdue" }) : null,
        h("span", { class: `priority p${order.priority}`, i18n: "priority_short", args: { priority: order.priority } })),
      jobTitle(types, order).generic ? null : serviceName(types, order.service_code),
      h("p", { class: "address" }, h("span", { i18n: "label_address" }), " ", h("strong", { text: order.address })),
      h("p", { i18n: "due_at", args: { time: formatTime(order.due_at, getLang()) } }),
      order.description ? h("p", { text: order.description }) : null,
      readOnly ? h("p", { class: "alert", i18n: "crew_reassigned_away" }) : null,
      order.status === "cancelled" ? h("p", { class: "alert", id: "cancelled-notice", i18n: order.work_performed ? "crew_cancelled_work_performed" : "crew_cancelled", args: { reason: order.cancel_reason || "—" } }) : null,
      order.outcome ? h("p", { id: "order-outcome" }, h("span", { i18n: "label_outcome" }), " ", h("span", { i18n: `outcome_${order.outcome}` })) : null,
      (order.conflicts || []).length ? h("ul", { id: "order-conflicts" }, order.conflicts.map((c) => h("li", { "data-kind": c.kind, "data-state": c.status },
        h("span", { i18n: `conflict_${c.kind}` }), " — ", h("span", { i18n: c.status === "open" ? "conflict_open" : "conflict_resolved" }),
        c.resolution ? h("span", {}, " — ", h("span", { i18n: `resolution_${c.resolution}` })) : null))) : null),
    await noticesView(order.id),
    actions,
    completeForm,
    h("section", { class: "card stack" }, h("h3", { i18n: "photos_title" }),
      h("label", { for: "photo-input", class: "button primary with-icon", id: "take-photo" }, icon("camera"), h("span", { i18n: "action_take_photo" })), photoInput,
      h("ul", { id: "photo-list", class: "photo-list" }, (order.photos || []).map((p) => {
        const local = localPhotos.find((l) => l.photo_id === p.id);
        const state = local?.state === "confirmed" || p.received ? "confirmed" : (local?.state || "pending");
        const src = thumbUrl(local);
        return h("li", { "data-photo-id": p.id, "data-state": state },
          src ? h("img", { class: "thumb", src, "i18n-alt": "photo_alt", width: 64, height: 64 }) : null,
          h("span", { class: "grow stack-tight" },
            h("span", { i18n: `photo_state_${state}` }),
            state === "confirmed" ? null : h("progress", { max: local?.size || 1, value: local?.offset || 0, "data-progress": p.id })));
      }))),
    h("section", { class: "card stack" }, h("h3", { i18n: "notes_title" }),
      h("ul", { id: "note-list" }, (order.notes || []).map((n) => h("li", { "data-pending": n.pending ? "1" : "0" }, h("span", { text: n.body }),
        " ", h("small", { text: `${n.author || ""} ${formatTime(n.created_at, getLang())}` })))),
      readOnly ? null : noteForm),
    h("section", { class: "card stack" }, h("h3", { i18n: "materials_title" }),
      h("ul", { id: "material-list" }, (order.materials || []).filter((m) => !m.voids && !voided.has(m.id)).map((m) => h("li", {},
        h("span", { i18n: `material_${MATERIALS.some(([c]) => c === m.material_code) ? m.material_code : "other"}` }), " ",
        h("span", { text: `${m.quantity} ${m.unit}` }), " ",
        readOnly ? null : h("button", { class: "small", i18n: "action_void", onclick: () => queue(order, "workorder.void_material@1", { entry_id: newUuid(), voids: m.id }) })))),
      readOnly ? null : materialForm),
    h("section", { class: "card stack", id: "order-detail-online" }, h("h3", { i18n: "requests_title" }),
      cached ? h("ul", {}, cached.requests.map((r) => h("li", {}, h("span", { text: `#${r.id} ${r.description || ""}` })))) : h("p", { i18n: "detail_online_only" }),
      h("h3", { i18n: "history_title" }),
      cached ? h("ul", {}, cached.history.map((e) => h("li", {}, h("span", { text: `${formatTime(e.created_at ?? e.at, getLang())} ${e.action ?? e.kind ?? ""} ${e.actor ?? ""}` })))) : h("p", { i18n: "detail_online_only" })),
  );
}

// After a pull changed the replica, fetch every order's linked requests and history while the
// network is there, so a job assigned while online reads complete later with no network.
let prefetching = false;
let lastPrefetch = 0;
async function prefetchDetails() {
  if (prefetching || !navigator.onLine || Date.now() - lastPrefetch < 20000) return;
  prefetching = true;
  lastPrefetch = Date.now();
  try {
    for (const order of await readWorkOrders(db)) await loadDetail(order.id);
  } catch {
    lastPrefetch = 0; // a cut connection: try again after the next sync
  } finally {
    prefetching = false;
  }
}

/** Linked requests and history come from the crew API when online; kept for offline reading. */
async function loadDetail(id) {
  const token = await getMeta(db, "token");
  if (!token || !navigator.onLine) return;
  const answer = await apiGet(`/api/v1/crew/work-orders/${id}`, { token });
  if (answer.status !== 200) return;
  const before = await transaction(db, ["details"], "readonly", ({ details }) => new Promise((resolve) => {
    const r = details.get(id); r.onsuccess = () => resolve(r.result); r.onerror = () => resolve(null);
  }));
  const value = { id, requests: answer.body.requests || [], history: answer.body.history || [] };
  if (JSON.stringify(before) === JSON.stringify(value)) return;
  await transaction(db, ["details"], "readwrite", ({ details }) => put(details, value));
  refresh("data");
}

// Thumbnails from the phone's own copy (a blob: URL, shown at once and offline), one URL per photo.
const thumbUrls = new Map();
function thumbUrl(local) {
  const blob = local?.thumb || local?.blob;
  if (!blob) return null;
  if (!thumbUrls.has(local.photo_id)) thumbUrls.set(local.photo_id, URL.createObjectURL(blob));
  return thumbUrls.get(local.photo_id);
}

function updateProgress() {
  if (!engine) return;
  for (const [photoId, { offset, length }] of engine.progress) {
    const bar = document.querySelector(`progress[data-progress="${photoId}"]`);
    if (bar) {
      bar.max = length;
      bar.value = offset;
    }
  }
}

export function leaveCrew() {
  screen = null;
  hints?.close();
  hints = null;
}
