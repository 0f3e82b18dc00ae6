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
