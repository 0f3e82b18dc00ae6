// fetch() wrapper: JSON in and out, bearer token, Accept-Language. A network failure is status 0
// (never an exception), so callers classify every answer the same way.

import { getLang } from "./i18n.js";

// A call that gets no answer within `timeoutMs` counts as a network failure: on "lie-fi" (connected,
// nothing answers) or a cut that leaves the connection open, the caller's backoff takes over
// instead of waiting forever.
export const DEFAULT_TIMEOUT_MS = 30000;

export async function request(method, path, { body, token, headers = {}, raw = false, signal, timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  const timeout = timeoutMs && typeof AbortSignal !== "undefined" && AbortSignal.timeout ? AbortSignal.timeout(timeoutMs) : null;
  const init = { method, headers: { "Accept-Language": getLang(), ...headers },
    signal: signal && timeout && AbortSignal.any ? AbortSignal.any([signal, timeout]) : (signal || timeout || undefined) };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    if (raw) init.body = body;
    else {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    return { status: 0, ok: false, body: null, headers: new Headers(), error };
  }
  let data = null;
  const type = response.headers.get("content-type") || "";
  if (type.includes("json")) {
    try {
      data = await response.json();
    } catch (error) {
      if (error?.name === "AbortError" || error?.name === "TimeoutError") return { status: 0, ok: false, body: null, headers: new Headers(), error };
      data = null;
    }
  }
  return { status: response.status, ok: response.ok, body: data, headers: response.headers };
}

export const apiGet = (path, opts) => request("GET", path, opts);
export const apiPost = (path, body, opts = {}) => request("POST", path, { ...opts, body });

export function retryAfterMs(headers) {
  const value = headers?.get?.("retry-after");
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return seconds * 1000;
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : null;
}

// Server-Sent Events with a stream ticket. EventSource cannot send headers, and a bearer token in
// a URL ends up in logs: the server trades the token for a single-use ticket that lives a minute
// (POST /api/v1/auth/stream-ticket) and the stream URL carries that (?ticket=). A ticket is
// spent once, so when the stream ends or breaks (the server ends streams every few minutes, and at
// once on sign-out or a revoked device) this closes it and opens a new one with a fresh ticket,
// after `retryMs` (doubling up to a minute while the network is down). A 401/403 for the ticket
// means the session is over: `onAuthLost(code)` and no retry. `listeners` maps event names to
// handlers; `onState("open" | "retrying" | "closed")`. Returns { close() }.
export function openEventStream(path, token, listeners, { onState = () => {}, onAuthLost = () => {}, retryMs = 5000 } = {}) {
  let source = null;
  let timer = null;
  let closed = false;
  let delay = retryMs;
  const retry = () => {
    if (closed) return;
    onState("retrying");
    timer = setTimeout(connect, delay);
    delay = Math.min(delay * 2, 60000);
  };
  async function connect() {
    timer = null;
    if (closed) return;
    const answer = await apiPost("/api/v1/auth/stream-ticket", undefined, { token, timeoutMs: 15000 });
    if (closed) return;
    if (answer.status === 401 || answer.status === 403) {
      closed = true;
      onState("closed");
      onAuthLost(answer.body?.code || "not_authenticated");
      return;
    }
    if (!answer.ok || !answer.body?.ticket) return retry();
    const separator = path.includes("?") ? "&" : "?";
    source = new EventSource(`${path}${separator}ticket=${encodeURIComponent(answer.body.ticket)}`);
    source.onopen = () => {
      delay = retryMs;
      onState("open");
    };
    for (const [name, handler] of Object.entries(listeners)) source.addEventListener(name, handler);
    source.onerror = () => {
      // the browser would reconnect with the same, spent ticket: start over with a new one
      source?.close();
      source = null;
      retry();
    };
  }
  connect();
  return {
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      source?.close();
      source = null;
    },
  };
}
