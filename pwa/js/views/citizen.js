// Citizen page: submit a request, follow it with a private tracking link, opt in to push, see the
// public completion photo.

import { h, clear, formatTime, icon } from "../dom.js";
import { t, getLang } from "../i18n.js";
import { apiGet, apiPost } from "../api.js";
import { subscribeToRequest, pushUnavailableReason } from "../push.js";
import { currentPosition } from "../photos.js";

const MY_REQUESTS = "tournee.my-requests";

function myRequests() {
  try {
    return JSON.parse(localStorage.getItem(MY_REQUESTS) || "[]");
  } catch {
    return [];
  }
}

export async function renderReport(root) {
  clear(root);
  const types = await apiGet("/api/v1/service-types");
  const message = h("p", { class: "message", role: "status", id: "report-message" });
  const lat = h("input", { type: "hidden", name: "lat" });
  const lon = h("input", { type: "hidden", name: "lon" });
  const located = h("p", { id: "located", i18n: "report_no_location" });
  const select = h("select", { id: "report-service", name: "service_code", required: true },
    h("option", { value: "", i18n: "choose_service" }),
    (types.body || []).filter((s) => s.active !== false).map((s) => h("option", { value: s.code, text: getLang() === "en" ? s.name_en : s.name_fr })));
  const form = h("form", { class: "card stack", id: "report-form" },
    h("h2", { i18n: "report_title" }),
    types.status === 0 ? h("p", { class: "alert", i18n: "error_offline" }) : null,
    h("label", { for: "report-service", i18n: "field_service" }), select,
    h("label", { for: "report-address", i18n: "field_address" }),
    h("input", { id: "report-address", name: "address", maxlength: 300, autocomplete: "street-address" }),
    h("label", { for: "report-description", i18n: "field_description" }),
    h("textarea", { id: "report-description", name: "description", maxlength: 4000, rows: 4 }),
    h("button", { type: "button", id: "report-locate", class: "with-icon", onclick: async () => {
      setMessage(located, "report_locating");
      const position = await currentPosition(15000);
      if (!position) return setMessage(located, "report_location_failed");
      lat.value = position.lat;
      lon.value = position.lon;
      setMessage(located, "report_located");
    } }, icon("pin"), h("span", { i18n: "action_use_location" })),
    located, lat, lon,
    h("label", { for: "report-email", i18n: "field_email_optional" }),
    h("input", { id: "report-email", name: "reporter_email", type: "email", maxlength: 200, autocomplete: "email" }),
    h("button", { type: "submit", class: "primary", id: "report-submit", i18n: "action_submit" }),
    message);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!lat.value) return setMessage(message, "report_location_required");
    const data = Object.fromEntries(new FormData(form));
    const body = {
      service_code: data.service_code, description: data.description, address: data.address,
      lat: Number(data.lat), lon: Number(data.lon), language: getLang(), channel: "web",
      reporter_email: data.reporter_email || null,
    };
    const answer = await apiPost("/api/v1/public/requests", body);
    if (answer.status === 0) return setMessage(message, "error_offline");
    if (!answer.ok) return setMessage(message, "report_refused");
    localStorage.setItem(MY_REQUESTS, JSON.stringify([answer.body.tracking_token, ...myRequests()].slice(0, 20)));
    location.hash = `#/suivi/${answer.body.tracking_token}`;
  });
  const mine = myRequests();
  root.append(form);
  if (mine.length) root.append(h("section", { class: "card stack" }, h("h3", { i18n: "my_requests" }),
    h("ul", {}, mine.map((token, i) => h("li", {}, h("a", { href: `#/suivi/${token}`, i18n: "my_request_n", args: { n: mine.length - i } }))))));
}

function setMessage(el, key, args) {
  el.textContent = t(key, args);
  el.dataset.i18n = key;
}

export async function renderTracking(root, token) {
  clear(root);
  const answer = await apiGet(`/api/v1/public/requests/${encodeURIComponent(token)}`);
  if (answer.status !== 200) {
    root.append(h("p", { class: "alert", i18n: answer.status === 0 ? "error_offline" : "tracking_not_found" }));
    return;
  }
  const r = answer.body;
  const status = r.work_order_status || r.status;
  const pushMessage = h("p", { id: "push-message", role: "status" });
  const unavailable = pushUnavailableReason();
  const photo = r.completion_photo;
  root.append(h("section", { class: "card stack", id: "tracking", "data-status": status },
    h("h2", { i18n: "tracking_title" }),
    h("p", { class: "big" }, h("span", { text: getLang() === "en" ? r.service_name_en : r.service_name_fr })),
    h("p", {}, h("span", { i18n: "label_address" }), " ", h("strong", { text: r.address || "—" })),
    h("p", {}, h("span", { i18n: "label_status" }), " ", h("strong", { id: "tracking-status", "data-status": status, i18n: `citizen_status_${status}` })),
    r.outcome ? h("p", {}, h("span", { i18n: "label_outcome" }), " ", h("strong", { i18n: `outcome_${r.outcome}` })) : null,
    h("p", { i18n: "tracking_updated", args: { time: formatTime(r.updated_at, getLang()) } }),
    photo ? h("img", { id: "completion-photo", src: photo.display, "i18n-alt": "completion_photo_alt", loading: "lazy" }) : null,
    h("p", { i18n: "tracking_keep_link" }),
    unavailable ? h("p", { class: "notice", id: "push-unavailable", i18n: unavailable }) : null,
    unavailable ? null : h("button", { id: "push-subscribe", class: "primary with-icon", onclick: async (event) => {
      const button = event.currentTarget;
      button.disabled = true;
      setMessage(pushMessage, "push_subscribing");
      const result = await subscribeToRequest(token);
      setMessage(pushMessage, result);
      button.disabled = result === "push_subscribed";
    } }, icon("bell"), h("span", { i18n: "action_notify_me" })),
    pushMessage,
    h("button", { id: "tracking-refresh", i18n: "action_refresh", onclick: () => renderTracking(root, token) })));
}
