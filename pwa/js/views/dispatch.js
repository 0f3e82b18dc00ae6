// Dispatcher console: the queue of new requests with duplicate suggestions, work orders with SLA
// badges (assign, reassign, bulk assign, reprioritise, cancel), the sync conflicts inbox with its
// resolve actions and photo evidence. Live: an SSE stream when the server offers one, else a poll.

import { h, clear, formatTime } from "../dom.js";
import { t, getLang } from "../i18n.js";
import { request, apiGet, apiPost, openEventStream } from "../api.js";

const TOKEN = "tournee.dispatch-token";
const POLL_MS = 15000;
const RESOLUTIONS = {
  completion_not_applied: ["accept_completion", "keep_cancellation", "reopen", "dismiss"],
  status_superseded: ["reopen", "dismiss"],
  suggestion: ["accept_suggestion", "dismiss"],
};
const OPEN = "new,assigned,en_route,on_site,on_hold";

let state = null;

export function leaveDispatch() {
  if (!state) return;
  clearInterval(state.poll);
  state.events?.close();
  state = null;
}

export async function renderDispatch(root) {
  leaveDispatch();
  clear(root);
  const token = localStorage.getItem(TOKEN);
  if (!token) return renderSignIn(root);
  state = { root, token, selected: new Set() };
  const me = await apiGet("/api/v1/auth/me", { token });
  if (me.status === 401 || (me.ok && !["dispatcher", "admin"].includes(me.body.role))) {
    localStorage.removeItem(TOKEN);
    return renderSignIn(root, "dispatch_signed_out");
  }
  root.append(
    h("div", { class: "row" },
      h("span", { id: "live-state", i18n: "live_polling" }),
      h("button", { id: "dispatch-refresh", i18n: "action_refresh", onclick: () => load() }),
      h("button", { id: "dispatch-signout", i18n: "action_sign_out", onclick: () => signOut(root) })),
    h("div", { id: "dispatch-message", role: "status" }),
    h("section", { class: "card stack", id: "notices", "aria-live": "polite" }),
    h("section", { class: "card stack", id: "conflicts" }),
    h("section", { class: "card stack", id: "queue" }),
    h("section", { class: "card stack", id: "orders" }),
    h("section", { class: "card stack", id: "evidence" }),
    exportsSection());
  await load();
  state.poll = setInterval(() => load(), POLL_MS);
  connectLive();
}

// Downloads (server/exports, docs/exports.md): the token travels only in the Authorization
// header, so the file is fetched here and handed to the browser as a blob link.
const EXPORTS = [
  ["export-work-orders-csv", "export_work_orders_csv", "/api/v1/exports/work-orders?format=csv"],
  ["export-work-orders-geojson", "export_work_orders_geojson", "/api/v1/exports/work-orders?format=geojson"],
  ["export-requests-csv", "export_requests_csv", "/api/v1/exports/requests?format=csv"],
  ["export-requests-geojson", "export_requests_geojson", "/api/v1/exports/requests?format=geojson"],
  ["export-sla-csv", "export_sla_csv", "/api/v1/exports/sla?format=csv"],
];

function exportsSection() {
  const day = (offset) => new Date(Date.now() + offset * 86400000).toISOString().slice(0, 10);
  const since = h("input", { id: "export-since", type: "date", value: day(-30) });
  const until = h("input", { id: "export-until", type: "date", value: day(0) });
  const status = h("p", { id: "export-status", role: "status" });
  const range = () => {
    // the dispatcher's local days, from midnight to the midnight after the last day
    const params = new URLSearchParams();
    if (since.value) params.set("since", new Date(`${since.value}T00:00`).toISOString());
    if (until.value) params.set("until", new Date(new Date(`${until.value}T00:00`).getTime() + 86400000).toISOString());
    return params.toString();
  };
  return h("section", { class: "card stack", id: "exports" },
    h("h2", { i18n: "exports_title" }),
    h("p", { class: "muted", i18n: "exports_hint" }),
    h("div", { class: "row" },
      h("label", { for: "export-since", i18n: "field_export_since" }), since,
      h("label", { for: "export-until", i18n: "field_export_until" }), until),
    h("div", { class: "row" }, ...EXPORTS.map(([id, key, path]) =>
      h("button", { id, type: "button", i18n: key, onclick: () => download(`${path}&${range()}`, status) }))),
    status);
}

async function download(path, status) {
  setKey(status, "export_preparing");
  let response;
  try {
    response = await fetch(path, { headers: { Authorization: `Bearer ${state.token}`, "Accept-Language": getLang() } });
  } catch {
    return setKey(status, "error_offline");
  }
  if (!response.ok) {
    const problem = await response.json().catch(() => null);
    status.textContent = problem?.title || t("error_action_failed", { code: response.status });
    delete status.dataset.i18n;
    return;
  }
  const name = /filename="([^"]+)"/.exec(response.headers.get("content-disposition") || "")?.[1] || "export";
  const url = URL.createObjectURL(await response.blob());
  const link = h("a", { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  setKey(status, "export_done");
}

function connectLive() {
  // server/live.py (dispatch live updates): reload on any event; the poll stays as the safety net.
  if (!state || !("EventSource" in window)) return;
  // "hello" on every (re)connect (what was missed meanwhile), then one event per committed change.
  const events = ["hello", "work_order_changed", "request_created", "sla_escalated", "notice_acknowledged",
    "conflict_recorded", "conflict_resolved", "evidence_changed", "evidence_flagged"];
  const listeners = Object.fromEntries(events.map((name) => [name, () => load()]));
  listeners.message = () => load();
  state.events = openEventStream("/api/v1/live/events", state.token, listeners, {
    onState: (s) => setLive(s === "open" ? "live_connected" : "live_polling"),
    onAuthLost: () => state && (state.events = null), // the next load() shows the sign-in
  });
}

function setLive(key) {
  const el = document.getElementById("live-state");
  if (el) {
    el.textContent = t(key);
    el.dataset.i18n = key;
  }
}

function say(key, args) {
  const el = document.getElementById("dispatch-message");
  if (el) clear(el).append(h("p", { class: key.startsWith("error") ? "alert" : "notice", i18n: key, args }));
}

function renderSignIn(root, reason = null) {
  const message = h("p", { role: "status" });
  const form = h("form", { class: "card stack", id: "dispatch-signin" },
    h("h2", { i18n: "dispatch_signin_title" }),
    reason ? h("p", { class: "alert", i18n: reason }) : null,
    h("label", { for: "dispatch-username", i18n: "field_username" }),
    h("input", { id: "dispatch-username", name: "username", required: true, autocomplete: "username", autocapitalize: "none" }),
    h("label", { for: "dispatch-password", i18n: "field_password" }),
    h("input", { id: "dispatch-password", name: "password", type: "password", required: true, autocomplete: "current-password" }),
    h("button", { type: "submit", class: "primary", i18n: "action_sign_in" }), message);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const answer = await apiPost("/api/v1/auth/login", Object.fromEntries(new FormData(form)));
    if (answer.status === 0) return setKey(message, "error_offline");
    if (!answer.ok || !["dispatcher", "admin"].includes(answer.body.user.role)) return setKey(message, "error_signin_failed");
    localStorage.setItem(TOKEN, answer.body.token);
    renderDispatch(root);
  });
  root.append(form);
}

function setKey(el, key) {
  el.textContent = t(key);
  el.dataset.i18n = key;
}

async function call(method, path, body) {
  const answer = await request(method, path, { body, token: state.token });
  if (answer.status === 401) {
    localStorage.removeItem(TOKEN);
    renderDispatch(state.root);
    return answer;
  }
  if (!answer.ok) say(answer.status === 0 ? "error_offline" : "error_action_failed", { code: answer.body?.code ?? answer.status });
  return answer;
}

let loading = null;
let again = false;

function typing() {
  const active = document.activeElement;
  return Boolean(active && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName) &&
    active.closest("#order-list, #queue, #conflicts") && (active.value || "") !== "");
}

// The lists are never redrawn under a dispatcher's hands: not while a field being typed in has
// the focus (a redraw would wipe a cancel reason), and not between pressing and releasing a
// button (a redraw there replaces the button, so the click lands on nothing). A redraw that
// was due meanwhile happens once the press ends or the focus leaves the field.
let pressing = false;
let deferred = false;
function busy() {
  return pressing || typing();
}
function resumeDeferred() {
  // After the click handlers of this press have run, and after the focus has moved.
  setTimeout(() => {
    if (deferred && !busy()) {
      deferred = false;
      load();
    }
  }, 0);
}
document.addEventListener("pointerdown", () => { pressing = true; }, true);
for (const name of ["pointerup", "pointercancel"]) {
  document.addEventListener(name, () => { pressing = false; resumeDeferred(); }, true);
}
document.addEventListener("focusout", resumeDeferred, true);

async function load() {
  if (!state) return;
  if (loading) {
    // A change announced while a load is in flight may be missing from it: load once more after.
    again = true;
    return loading;
  }
  loading = (async () => {
    const [crews, requests, orders, conflicts, notices] = await Promise.all([
      apiGet("/api/v1/crews/", { token: state.token }),
      apiGet("/api/v1/requests/?status=received&unassigned=true&limit=100", { token: state.token }),
      apiGet(`/api/v1/work-orders/?status=${OPEN}&limit=200`, { token: state.token }),
      apiGet("/api/v1/sync/conflicts?status=open&limit=100", { token: state.token }),
      apiGet("/api/v1/notices?open=true&limit=50", { token: state.token }),
    ]);
    if (!state) return;
    if (busy()) {
      deferred = true;
      return;
    }
    state.crews = crews.body?.items ?? crews.body ?? [];
    renderNotices(notices.body?.items ?? []);
    renderConflicts(conflicts);
    renderQueue(requests.body?.items ?? []);
    renderOrders(orders.body?.items ?? []);
  })();
  try {
    await loading;
  } finally {
    loading = null;
  }
  if (again) {
    again = false;
    await load();
  }
}

function crewSelect(id, current) {
  return h("select", { id, "i18n-aria-label": "field_crew" }, h("option", { value: "", i18n: "choose_crew" }),
    (state.crews || []).map((c) => h("option", { value: c.id, selected: c.id === current, text: c.name || c.code })));
}

function renderNotices(items) {
  // SLA escalations from the scheduler (GET /api/v1/notices): "Seen" takes one off every console.
  const section = clear(document.getElementById("notices"));
  section.append(h("h2", { i18n: "notices_title", args: { count: items.length } }));
  if (!items.length) return section.append(h("p", { i18n: "notices_none" }));
  section.append(h("ul", { id: "notice-list" }, items.map((n) => h("li", { class: "notice", "data-notice": n.id, "data-kind": n.kind, "data-work-order": n.work_order_id ?? "" },
    h("strong", {
      i18n: n.kind === "sla_overdue" ? "notice_sla_overdue" : "notice_other",
      args: { id: n.work_order_id, minutes: n.data?.overdue_minutes ?? "?" },
    }), " ",
    h("small", { text: formatTime(n.created_at, getLang()) }), " ",
    h("button", { class: "acknowledge", i18n: "action_acknowledge", onclick: async () => {
      await call("POST", `/api/v1/notices/${n.id}/acknowledge`);
      load();
    } })))));
}

function renderConflicts(answer) {
  const section = clear(document.getElementById("conflicts"));
  section.append(h("h2", { i18n: "conflicts_title" }));
  if (answer.status === 404) return section.append(h("p", { i18n: "conflicts_unavailable" }));
  const items = answer.body?.items ?? [];
  if (!items.length) return section.append(h("p", { i18n: "conflicts_none" }));
  section.append(h("ul", { id: "conflict-list" }, items.map((c) => h("li", { class: `conflict severity-${c.severity}`, "data-conflict": c.id, "data-kind": c.kind, "data-work-order": c.work_order_id },
    h("span", { class: `badge severity-${c.severity}`, i18n: `severity_${c.severity}` }), " ",
    h("strong", { i18n: `conflict_${c.kind}` }), " ",
    h("span", { i18n: "work_order_n", args: { id: c.work_order_id } }), " ",
    h("small", { text: formatTime(c.created_at, getLang()) }),
    h("div", { class: "actions" }, (RESOLUTIONS[c.kind] || ["dismiss"]).map((resolution) => h("button", {
      "data-resolution": resolution, i18n: `resolution_${resolution}`,
      onclick: async () => {
        const done = await call("POST", `/api/v1/sync/conflicts/${c.id}/resolve`, { resolution, note: "" });
        if (done.ok) say("conflict_resolved_msg");
        load();
      },
    })))))));
}

function renderQueue(requests) {
  const section = clear(document.getElementById("queue"));
  section.append(h("h2", { i18n: "queue_title", args: { count: requests.length } }));
  if (!requests.length) return section.append(h("p", { i18n: "queue_empty" }));
  section.append(h("ul", { id: "request-list" }, requests.map((r) => {
    const dupes = h("ul", { class: "duplicates" });
    return h("li", { "data-request": r.id },
      h("strong", { text: `#${r.id} ${r.service_code}` }), " ", h("span", { text: r.address }),
      h("p", { text: r.description || "" }),
      // a picture the reporter's app linked (Open311 media_url): http(s) only, never fetched here
      /^https?:\/\//i.test(r.media_url || "") ? h("p", {}, h("a", {
        class: "media-link", href: r.media_url, target: "_blank", rel: "noopener noreferrer nofollow",
        referrerpolicy: "no-referrer", i18n: "request_media_link",
      })) : null,
      h("div", { class: "actions" },
        h("button", { i18n: "action_create_work_order", onclick: async () => {
          const done = await call("POST", "/api/v1/work-orders/", { request_ids: [r.id] });
          if (done.ok) say("work_order_created", { id: done.body.id });
          load();
        } }),
        h("button", { i18n: "action_show_duplicates", onclick: async () => {
          const answer = await call("GET", `/api/v1/requests/${r.id}/duplicates`);
          clear(dupes);
          const list = answer.body || [];
          if (!list.length) return dupes.append(h("li", { i18n: "duplicates_none" }));
          for (const d of list) {
            dupes.append(h("li", {}, h("span", { i18n: "duplicate_of", args: { id: d.id, distance: Math.round(d.distance_m ?? 0) } }),
              d.work_order_id ? h("button", { class: "small", i18n: "action_merge", onclick: async () => {
                const done = await call("POST", `/api/v1/work-orders/${d.work_order_id}/merge`, { request_ids: [r.id] });
                if (done.ok) say("merged_msg");
                load();
              } }) : null));
          }
        } })),
      dupes);
  })));
}

function slaBadge(o) {
  if (o.overdue) return h("span", { class: "badge overdue", i18n: "sla_overdue" });
  const left = Date.parse(o.due_at) - Date.now();
  if (left < 2 * 3600 * 1000) return h("span", { class: "badge soon", i18n: "sla_soon" });
  return h("span", { class: "badge ok", i18n: "sla_ok" });
}

function renderOrders(orders) {
  const section = clear(document.getElementById("orders"));
  const bulkCrew = crewSelect("bulk-crew", null);
  section.append(h("h2", { i18n: "orders_title", args: { count: orders.length } }),
    h("div", { class: "row" }, bulkCrew, h("button", { id: "bulk-assign", i18n: "action_bulk_assign", onclick: async () => {
      if (!bulkCrew.value || !state.selected.size) return say("error_select_first");
      const done = await call("POST", "/api/v1/work-orders/bulk-assign", { work_order_ids: [...state.selected], crew_id: Number(bulkCrew.value) });
      if (done.ok) say("bulk_assigned_msg", { count: done.body.updated.length });
      state.selected.clear();
      load();
    } })));
  section.append(h("ul", { id: "order-list" }, orders.map((o) => {
    const crew = crewSelect(`crew-${o.id}`, o.crew_id);
    const priority = h("select", { "i18n-aria-label": "field_priority", class: "priority-select" },
      [1, 2, 3, 4].map((p) => h("option", { value: p, selected: p === o.priority, i18n: `priority_${p}` })));
    const reason = h("input", { "i18n-placeholder": "field_cancel_reason", "i18n-aria-label": "field_cancel_reason", maxlength: 500, class: "cancel-reason" });
    const note = h("input", { "i18n-placeholder": "field_office_note", "i18n-aria-label": "field_office_note", maxlength: 2000, class: "office-note" });
    const noteId = crypto.randomUUID(); // one per drawn row: a double click adds the note once
    return h("li", { "data-work-order": o.id, "data-status": o.status, "data-crew": o.crew_id ?? "" },
      h("label", { class: "row" }, h("input", { type: "checkbox", checked: state.selected.has(o.id), onchange: (e) => e.target.checked ? state.selected.add(o.id) : state.selected.delete(o.id), "i18n-aria-label": "field_select" }),
        h("strong", { text: `#${o.id} ${o.title || o.service_name}` })),
      h("div", { class: "row" }, slaBadge(o), h("span", { class: `badge status-${o.status}`, i18n: `status_${o.status}` }),
        h("span", { text: o.address }), h("span", { i18n: "due_at", args: { time: formatTime(o.due_at, getLang()) } })),
      h("div", { class: "actions" },
        crew, h("button", { class: "assign", i18n: o.crew_id ? "action_reassign" : "action_assign", onclick: async () => {
          if (!crew.value) return;
          await call("POST", `/api/v1/work-orders/${o.id}/assign`, { crew_id: Number(crew.value) });
          load();
        } }),
        priority, h("button", { class: "reprioritise", i18n: "action_reprioritise", onclick: async () => {
          await call("POST", `/api/v1/work-orders/${o.id}/priority`, { priority: Number(priority.value) });
          load();
        } }),
        reason, h("button", { class: "cancel danger", i18n: "action_cancel_order", onclick: async () => {
          if (!reason.value.trim()) return say("error_reason_required");
          const done = await call("POST", `/api/v1/work-orders/${o.id}/cancel`, { reason: reason.value.trim() });
          if (done.ok) say("cancelled_msg", { id: o.id });
          load();
        } }),
        h("button", { class: "evidence", i18n: "action_photos", onclick: () => showEvidence(o.id) }),
        note, h("button", { class: "add-note", i18n: "action_add_office_note", onclick: async () => {
          if (!note.value.trim()) return say("error_note_required");
          const done = await call("POST", `/api/v1/work-orders/${o.id}/notes`, { body: note.value.trim(), note_id: noteId });
          if (done.ok) say("office_note_added_msg", { id: o.id });
          load();
        } })));
  })));
}

async function showEvidence(id) {
  const section = clear(document.getElementById("evidence"));
  section.append(h("h2", { i18n: "evidence_title", args: { id } }));
  const answer = await call("GET", `/api/v1/work-orders/${id}/photos`);
  if (!answer.ok) return;
  const photos = answer.body.photos ?? answer.body.items ?? [];
  if (!photos.length) section.append(h("p", { i18n: "evidence_none" }));
  section.append(h("ul", { class: "evidence-list" }, photos.map((p) => h("li", {},
    p.urls?.thumb || p.thumb_url ? h("img", { src: p.urls?.thumb || p.thumb_url, "i18n-alt": "photo_alt", loading: "lazy" }) : null,
    h("span", { text: `${p.kind ?? ""} ${p.distance_m != null ? `${Math.round(p.distance_m)} m` : ""}` }),
    (p.flags || []).map((f) => h("span", { class: "badge warn", text: typeof f === "string" ? f : (f.message || f.code) }))))));
}

// Signing out ends the session on the server too (its live stream closes there), not only in this
// browser; the token is forgotten first, so a network failure cannot keep the console signed in.
async function signOut(root) {
  const token = localStorage.getItem(TOKEN);
  localStorage.removeItem(TOKEN);
  if (token) await request("POST", "/api/v1/auth/logout", { token, timeoutMs: 5000 });
  renderDispatch(root);
}
