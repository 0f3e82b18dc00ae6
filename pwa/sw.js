// Service worker: serves the app shell from a versioned cache (offline cold start) and shows Web
// Push notifications. No business logic here: data, outbox and sync live in the page (IndexedDB).
const VERSION = "v1";
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

// Shell files: network first (fresh after a deploy), the cache when offline. API, sync and photo
// calls are never cached by the worker.
self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (/^\/(api|sync|media|open311|schema|healthz)(\/|$)/.test(url.pathname)) return;
  const key = request.mode === "navigate" ? "/" : url.pathname;
  event.respondWith(
    fetch(request)
      .then((response) => {
        if (response.ok && SHELL.includes(key)) {
          const copy = response.clone();
          caches.open(SHELL_CACHE).then((cache) => cache.put(key, copy));
        }
        return response;
      })
      .catch(() => caches.match(key, { cacheName: SHELL_CACHE }).then((cached) => cached || Response.error())),
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
