// fetch() wrapper: JSON in and out, bearer token, Accept-Language. A network failure is status 0
// (never an exception), so callers classify every answer the same way.

import { getLang } from "./i18n.js";

export async function request(method, path, { body, token, headers = {}, raw = false, signal } = {}) {
  const init = { method, headers: { "Accept-Language": getLang(), ...headers }, signal };
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
    } catch {
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
