// Citizen Web Push: subscribe this browser to one request (server/notify). The service worker's
// push handler shows what the server sends; nothing else about push lives in the worker.

import { apiGet, apiPost } from "./api.js";
import { getLang } from "./i18n.js";

export const SUBSCRIBE_TIMEOUT_MS = 6000;

/** Why this browser cannot receive push, or null when it can try. */
export function pushUnavailableReason() {
  const ua = navigator.userAgent || "";
  const ios = /iPhone|iPad|iPod/.test(ua) || (ua.includes("Macintosh") && navigator.maxTouchPoints > 1);
  const standalone = window.matchMedia?.("(display-mode: standalone)").matches || navigator.standalone === true;
  if (ios && !standalone) return "push_ios_home_screen";
  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) return "push_unsupported";
  if (Notification.permission === "denied") return "push_denied";
  return null;
}

function base64UrlToBytes(value) {
  const padded = value.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(value.length / 4) * 4, "=");
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

function withTimeout(promise, ms) {
  return Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error("timeout")), ms))]);
}

/** Returns a catalogue key describing the result ("push_subscribed" on success). */
export async function subscribeToRequest(trackingToken) {
  const reason = pushUnavailableReason();
  if (reason) return reason;
  const permission = await Notification.requestPermission();
  if (permission !== "granted") return "push_denied";
  const key = await apiGet("/api/v1/public/push/vapid-public-key");
  if (key.status !== 200) return key.status === 0 ? "error_offline" : "push_failed";
  let subscription;
  try {
    const registration = await withTimeout(navigator.serviceWorker.ready, SUBSCRIBE_TIMEOUT_MS);
    subscription = await withTimeout(
      registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: base64UrlToBytes(key.body.public_key) }),
      SUBSCRIBE_TIMEOUT_MS,
    );
  } catch {
    return "push_no_service"; // no push service reachable from this browser
  }
  const answer = await apiPost(`/api/v1/public/requests/${encodeURIComponent(trackingToken)}/push-subscription`,
    { subscription: subscription.toJSON(), language: getLang() });
  if (answer.status === 201 || answer.status === 200) return "push_subscribed";
  return answer.status === 0 ? "error_offline" : "push_failed";
}
