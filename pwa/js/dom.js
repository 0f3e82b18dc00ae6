// DOM helper. Text reaches the page only two ways, so a test can prove nothing is untranslated:
//   {i18n: "key", args: {...}}  → text from the catalogue (data-i18n="key")
//   {text: value}               → data from the server or the user (data-data)
// Attributes shown to people (placeholder, aria-label, title) also come from the catalogue:
//   {"i18n-placeholder": "key"}, {"i18n-aria-label": "key"}, {"i18n-title": "key"}.
import { t } from "./i18n.js";

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "i18n") {
      el.textContent = t(value, attrs.args);
      el.dataset.i18n = value;
    } else if (name === "args") {
      continue;
    } else if (name === "text") {
      el.textContent = String(value);
      el.dataset.data = "";
    } else if (name.startsWith("i18n-")) {
      el.setAttribute(name.slice(5), t(value, attrs.args));
    } else if (name.startsWith("on")) {
      el.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      el.className = value;
    } else if (name in el && typeof value !== "string") {
      el[name] = value;
    } else {
      el.setAttribute(name, value === true ? "" : value);
    }
  }
  for (const child of children.flat()) if (child) el.append(child);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function formatTime(iso, lang) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "—";
  return date.toLocaleString(lang === "en" ? "en-CA" : "fr-CA", {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  });
}

// Inline SVG icons (issue 19): emoji render as empty boxes where a phone or browser has no emoji
// font. An icon is decoration beside a text label, so it is hidden from assistive technology.
const ICONS = {
  camera: ["M4 7h3l2-3h6l2 3h3a1 1 0 0 1 1 1v11a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V8a1 1 0 0 1 1-1z",
    "M12 17a4 4 0 1 0 0-8 4 4 0 0 0 0 8z"],
  pin: ["M12 21s-7-6.2-7-11.5a7 7 0 0 1 14 0C19 14.8 12 21 12 21z",
    "M12 12a2.5 2.5 0 1 0 0-5 2.5 2.5 0 0 0 0 5z"],
  bell: ["M6 16v-5a6 6 0 0 1 12 0v5l2 2H4z", "M10 20.5a2 2 0 0 0 4 0"],
};

export function icon(name) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  for (const [k, v] of Object.entries({ viewBox: "0 0 24 24", width: "20", height: "20", fill: "none",
    stroke: "currentColor", "stroke-width": "2", "stroke-linecap": "round", "stroke-linejoin": "round",
    "aria-hidden": "true", focusable: "false", class: "icon", "data-icon": name })) svg.setAttribute(k, v);
  for (const d of ICONS[name]) {
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}
