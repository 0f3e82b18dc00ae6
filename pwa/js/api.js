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
