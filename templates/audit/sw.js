/* The auditor workspace's service worker: keeps the interview form usable without a connection.
   Pages are fetched from the network first and kept for when it drops; static files come from
   the cache. Nothing is sent from here: interviews wait in IndexedDB (see outbox.js). */
"use strict";

const VERSION = {{ version|tojson }};
const STATIC_CACHE = "audit-static-" + VERSION;
const PAGE_CACHE = "audit-pages";
const SHELL = {{ shell|tojson }};
const OFFLINE_URL = {{ offline_url|tojson }};
const SCOPE = new URL(self.registration.scope).pathname;
/* Pages worth having offline: the list, an assignment, and its interview form. */
const OFFLINE_PAGES = [/^\/$/, /^\/assignments\/\d+$/, /^\/assignments\/\d+\/interviews\/new$/];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(STATIC_CACHE)
      .then((cache) => cache.addAll([...SHELL, OFFLINE_URL]))
      .then(() => self.skipWaiting())
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(
        keys.filter((key) => key.startsWith("audit-static-") && key !== STATIC_CACHE).map((key) => caches.delete(key))
      ))
      .then(() => self.clients.claim())
  );
});

function offlinePage(pathname) {
  if (!pathname.startsWith(SCOPE)) {
    return false;
  }
  const rest = "/" + pathname.slice(SCOPE.length);
  return OFFLINE_PAGES.some((pattern) => pattern.test(rest));
}

async function networkFirst(request) {
  const url = new URL(request.url);
  const key = url.origin + url.pathname;
  try {
    const response = await fetch(request);
    // Only a page really shown to a signed-in auditor is kept (not a redirect to the login page).
    if (response.ok && !response.redirected && offlinePage(url.pathname)) {
      const cache = await caches.open(PAGE_CACHE);
      await cache.put(key, response.clone());
    }
    return response;
  } catch (error) {
    const cached = await caches.match(key, { cacheName: PAGE_CACHE });
    if (cached) {
      return cached;
    }
    const fallback = await caches.match(OFFLINE_URL, { cacheName: STATIC_CACHE });
    return fallback || Response.error();
  }
}

async function cacheFirst(request) {
  const cached = await caches.match(request, { cacheName: STATIC_CACHE });
  if (cached) {
    return cached;
  }
  const response = await fetch(request);
  if (response.ok) {
    const cache = await caches.open(STATIC_CACHE);
    await cache.put(request, response.clone());
  }
  return response;
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") {
    return;
  }
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) {
    return;
  }
  if (request.mode === "navigate" && url.pathname.startsWith(SCOPE)) {
    event.respondWith(networkFirst(request));
  } else if (SHELL.includes(url.pathname)) {
    event.respondWith(cacheFirst(request));
  }
});

/* The page asks for this when the auditor logs out: cached pages hold their unit's work. */
self.addEventListener("message", (event) => {
  if (event.data && event.data.type === "forget-pages") {
    event.waitUntil(caches.delete(PAGE_CACHE));
  }
});
