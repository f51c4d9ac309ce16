// The dashboard's service worker: the views last loaded stay readable without a connection.
// - the page's own files (versioned, immutable) and plotly.js: from the cache once fetched;
// - the page (/) and the read API's GET answers: from the network, a copy kept; when the network fails, the copy,
//   marked with the header X-Healthpipe-Offline (when it was fetched), which the page shows as "offline, data as of".
// Share links' data (/v1/shared/...) is never kept. Signing out drops the kept answers; closing the tab does not.
const VERSION = "__DASHBOARD_VERSION__";
const FILES = `healthpipe-files-${VERSION}`;
const DATA = "healthpipe-data";
const FETCHED_AT = "X-Healthpipe-Fetched-At";

self.addEventListener("install", () => self.skipWaiting());

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith("healthpipe-files-") && name !== FILES) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

self.addEventListener("message", (event) => {
  if (event.data?.type === "forget-data") event.waitUntil(caches.delete(DATA));
});

// Copies are kept per key (a hash of it, never the key): another key signing in on this browser never sees them.
async function keyedBy(request) {
  const presented = new TextEncoder().encode(request.headers.get("Authorization") || "");
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", presented));
  return Array.from(digest.slice(0, 12), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function fromCacheFirst(request) {
  const cache = await caches.open(FILES);
  const kept = await cache.match(request);
  if (kept) return kept;
  const response = await fetch(request);
  if (response.ok) await cache.put(request, response.clone());
  return response;
}

async function fromNetworkFirst(request, cacheKey) {
  const cache = await caches.open(DATA);
  try {
    const response = await fetch(request);
    if (response.status === 200) {
      const headers = new Headers(response.headers);
      headers.set(FETCHED_AT, new Date().toISOString());
      const body = await response.clone().arrayBuffer();
      await cache.put(cacheKey, new Response(body, { status: 200, statusText: response.statusText, headers }));
    }
    return response;
  } catch (err) {
    const kept = await cache.match(cacheKey, { ignoreVary: true });
    if (!kept) throw err;
    const headers = new Headers(kept.headers);
    headers.set("X-Healthpipe-Offline", kept.headers.get(FETCHED_AT) || "");
    return new Response(await kept.arrayBuffer(), { status: 200, headers });
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/dashboard/")) {
    event.respondWith(fromCacheFirst(request));
  } else if (request.mode === "navigate" && url.pathname === "/") {
    event.respondWith(fromNetworkFirst(request, "/"));
  } else if (url.pathname.startsWith("/v1/") && !url.pathname.startsWith("/v1/shared/")) {
    // the cache key only (never requested): a fragment would not do, the Cache API ignores fragments
    const keyed = (who) => `${url.pathname}${url.search}${url.search ? "&" : "?"}hp-cache-key=${who}`;
    event.respondWith(keyedBy(request).then((who) => fromNetworkFirst(request, keyed(who))));
  }
});
