// Entry point: the shell (header, language switch), hash routes, service-worker registration.
import { h, clear } from "./dom.js";
import { initLang, setLang, getLang } from "./i18n.js";
import { renderCrew, leaveCrew } from "./views/crew.js";
import { renderDispatch, leaveDispatch } from "./views/dispatch.js";
import { renderReport, renderTracking } from "./views/citizen.js";

const main = document.getElementById("app");
const header = document.getElementById("app-header");

function renderHeader() {
  clear(header).append(
    h("a", { href: "#/", class: "brand", i18n: "app_name" }),
    h("button", { id: "lang-switch", class: "lang", lang: getLang() === "fr" ? "en" : "fr", i18n: "lang_switch",
      onclick: () => { setLang(getLang() === "fr" ? "en" : "fr"); renderHeader(); route(); } }));
}

function renderHome(root) {
  clear(root).append(h("section", { class: "stack home" },
    h("h1", { i18n: "home_title" }),
    h("p", { i18n: "home_intro" }),
    h("a", { class: "button primary big", href: "#/signaler", id: "go-report", i18n: "home_report" }),
    h("a", { class: "button big", href: "#/equipe", id: "go-crew", i18n: "home_crew" }),
    h("a", { class: "button big", href: "#/repartition", id: "go-dispatch", i18n: "home_dispatch" })));
}

async function route() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const parts = hash.split("/").filter(Boolean);
  if (parts[0] !== "equipe") leaveCrew();
  if (parts[0] !== "repartition") leaveDispatch();
  document.body.dataset.route = parts[0] || "home";
  if (parts[0] === "equipe") return renderCrew(main, { id: parts[1] === "bt" ? Number(parts[2]) : null });
  if (parts[0] === "repartition") return renderDispatch(main);
  if (parts[0] === "signaler") return renderReport(main);
  if (parts[0] === "suivi" && parts[1]) return renderTracking(main, decodeURIComponent(parts[1]));
  return renderHome(main);
}

initLang();
renderHeader();
window.addEventListener("hashchange", route);
route().then(() => {
  document.body.dataset.ready = "1";
});

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {});
  // The worker refreshed the shell in the background: offer the new version (never forced,
  // a crew may be typing).
  navigator.serviceWorker.addEventListener("message", (event) => {
    if (event.data?.type !== "shell_updated" || document.getElementById("update-ready")) return;
    document.body.append(h("div", { id: "update-ready", class: "update-ready", role: "status" },
      h("span", { i18n: "sw_update_ready" }),
      h("button", { class: "small primary", i18n: "action_reload", onclick: () => location.reload() })));
  });
}
