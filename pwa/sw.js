// Service worker: serves the app shell from a versioned cache, cache first (a cold start is as
// fast with a silent network as offline), refreshed in the background and announced to the page;
// relays Background Sync to the page; shows Web Push notifications. No business logic here:
// data, outbox and sync live in the page (IndexedDB).
const VERSION = "v4";
const SHELL_CACHE = `tournee-shell-${VERSION}`;
const SHELL = [
  "/",
  "/index.html",
  "/manifest.webmanifest",
  "/css/app.css",
  "/icons/icon-192.png",
  "/js/app.js",
  "/js/api.js",
  "/js/dom.js",
  "/js/i18n.js",
  "/js/idb.js",
  "/js/outbox.js",
  "/js/replica.js",
  "/js/sync.js",
  "/js/photos.js",
  "/js/transitions.js",
  "/js/exif.js",
  "/js/shrink.js",
  "/js/shrink-worker.js",
  "/js/push.js",
  "/js/views/crew.js",
  "/js/views/citizen.js",
  "/js/views/dispatch.js",
];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(SHELL_CACHE)
      .then((cache) => cache.addAll(SHELL.map((url) => new Request(url, { cache: "reload" }))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith("tournee-") && k !== SHELL_CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

// Shell files: cache first, then refreshed from the network in the background; when a file
// changed, the open pages are told (they offer a reload). Not cached yet: network. API, sync and
// photo calls never touch the cache.
let announced = false;
async function revalidate(key, request, cached) {
  try {
    const response = await fetch(request, { cache: "no-cache" });
    if (!response.ok) return;
    const cache = await caches.open(SHELL_CACHE);
    const changed = cached && (await cached.text()) !== (await response.clone().text());
    await cache.put(key, response);
    if (changed && !announced) {
      announced = true;
      for (const client of await self.clients.matchAll({ type: "window" })) client.postMessage({ type: "shell_updated" });
    }
  } catch {
    /* offline or lie-fi: the cached copy stays */
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (/^\/(api|sync|media|open311|schema|healthz)(\/|$)/.test(url.pathname)) return;
  const key = request.mode === "navigate" ? "/" : url.pathname;
  if (!SHELL.includes(key)) return;
  event.respondWith(
    caches.match(key, { cacheName: SHELL_CACHE }).then((cached) => {
      // Clone now: once the cached response is handed to the page its body is used, and a
      // later clone() throws (the refresh then never happened and no update was announced).
      const refresh = revalidate(key, request, cached ? cached.clone() : undefined);
      if (cached) {
        event.waitUntil(refresh);
        return cached;
      }
      return fetch(request).catch(() => Response.error());
    }),
  );
});

// Background Sync (where the browser has it): the page registers "tournee-sync" when it has
// something to send; the browser fires it once the link is back, even if the page missed the
// "online" event. The worker only asks an open page to sync and waits for its answer.
self.addEventListener("sync", (event) => {
  if (event.tag !== "tournee-sync") return;
  event.waitUntil(
    self.clients.matchAll({ type: "window" }).then((windows) => Promise.all(windows.map((client) =>
      new Promise((resolve) => {
        const channel = new MessageChannel();
        const timer = setTimeout(resolve, 60 * 1000); // a page without the crew app never answers
        channel.port1.onmessage = () => { clearTimeout(timer); resolve(); };
        client.postMessage({ type: "sync" }, [channel.port2]);
      })))),
  );
});

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = { body: event.data ? event.data.text() : "" };
  }
  const title = data.title || "Tournée";
  event.waitUntil(self.registration.showNotification(title, {
    body: data.body || "",
    tag: data.tag,
    lang: data.lang,
    icon: "/icons/icon-192.png",
    badge: "/icons/icon-192.png",
    image: data.image,
    data: { url: data.url || "/" },
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = event.notification.data?.url || "/";
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
      for (const client of windows) {
        if ("focus" in client) return client.navigate(url).then((c) => (c || client).focus());
      }
      return self.clients.openWindow(url);
    }),
  );
});
