// The read API as the page calls it: the key from sessionStorage in the Authorization header (never in a URL),
// `cache: "no-cache"` so the browser revalidates (ETag, 304) instead of guessing, and the answers' troubles turned
// into events the page shows (signed out, too many requests, offline copies from the service worker).

const KEY = "healthpipe.apiKey";

export const session = {
  get key() { return sessionStorage.getItem(KEY); },
  signIn(key) { sessionStorage.setItem(KEY, key); },
  signOut() {
    sessionStorage.removeItem(KEY);
    // another key may sign in next in this tab: the previous one's offline copies go
    navigator.serviceWorker?.controller?.postMessage({ type: "forget-data" });
  },
};

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : `HTTP ${status}`);
    this.status = status;
  }
}

const listeners = new Set();
export function onApiEvent(listener) { listeners.add(listener); }
function emit(event) { for (const listener of listeners) listener(event); }

export async function request(path, { method = "GET", body, auth = true, key } = {}) {
  const headers = { Accept: "application/json" };
  const presented = key ?? session.key;
  if (auth && presented) headers.Authorization = `Bearer ${presented}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method, headers, cache: "no-cache", credentials: "omit",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    emit({ type: "unreachable" });
    throw new ApiError(0, "the API cannot be reached and no copy of this view was saved");
  }
  const offlineAsOf = response.headers.get("X-Healthpipe-Offline");
  emit(offlineAsOf ? { type: "offline", asOf: offlineAsOf } : { type: "online" });
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!response.ok) {
    if (response.status === 401 && auth) emit({ type: "unauthorized" });
    if (response.status === 429) emit({ type: "rate-limited", retryAfter: response.headers.get("Retry-After") });
    if (response.status === 503) emit({ type: "unavailable", retryAfter: response.headers.get("Retry-After") });
    const detail = data && typeof data === "object" ? data.detail : data;
    throw new ApiError(response.status, typeof detail === "string" ? detail : `HTTP ${response.status}`);
  }
  return data;
}

export const api = {
  me: (key) => request("/v1/me", { key }),
  summary: (date) => request(`/v1/me/summary?date=${encodeURIComponent(date)}`),
  aggregates: (types, period, start, end) => request(
    `/v1/me/aggregates?${new URLSearchParams({ types: types.join(","), period, start, end })}`),
  insights: (status = "active") => request(`/v1/me/insights?status=${status}`),
  acknowledge: (id) => request(`/v1/me/insights/${encodeURIComponent(id)}/acknowledge`, { method: "POST" }),
  healthScores: (start, end) => request(`/v1/me/health-scores?${new URLSearchParams({ start, end })}`),
  sources: (date) => request(`/v1/me/sources?date=${encodeURIComponent(date)}`),
  devices: () => request("/v1/me/devices"),
  priority: () => request("/v1/me/source-priority"),
  setPriority: (order) => request("/v1/me/source-priority", { method: "PUT", body: { order } }),
  resetPriority: () => request("/v1/me/source-priority", { method: "DELETE" }),
  metrics: () => request("/v1/metrics"),
  shares: () => request("/v1/me/shares"),
  createShare: (share) => request("/v1/me/shares", { method: "POST", body: share }),
  revokeShare: (id) => request(`/v1/me/shares/${encodeURIComponent(id)}`, { method: "DELETE" }),
  shared: (code) => request(`/v1/shared/${encodeURIComponent(code)}`, { auth: false }),
};
