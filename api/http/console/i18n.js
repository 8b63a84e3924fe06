// Every visible string lives in i18n/<lang>.json. Elements carry their message key in
// data-i18n (text) or data-i18n-attr ("attr:key;attr:key"), with variables in
// data-i18n-vars (JSON), so switching the language is one pass over the document.

export const LANGUAGES = ["id", "en"];
export const DEFAULT_LANGUAGE = "id";
const STORAGE_KEY = "wajah.language"; // a preference, not a secret: localStorage is fine

let current = DEFAULT_LANGUAGE;
let messages = {};
const listeners = new Set();

export function language() {
  return current;
}

export function preferredLanguage() {
  const stored = localStorage.getItem(STORAGE_KEY);
  return LANGUAGES.includes(stored) ? stored : DEFAULT_LANGUAGE;
}

export async function setLanguage(lang) {
  if (!LANGUAGES.includes(lang)) lang = DEFAULT_LANGUAGE;
  const response = await fetch(new URL(`i18n/${lang}.json`, import.meta.url));
  if (!response.ok) throw new Error(`cannot load i18n/${lang}.json (${response.status})`);
  messages = await response.json();
  current = lang;
  localStorage.setItem(STORAGE_KEY, lang);
  document.documentElement.lang = lang;
  translate(document);
  for (const listener of listeners) listener(lang);
}

export function onLanguageChange(listener) {
  listeners.add(listener);
}

export function has(key) {
  return Object.prototype.hasOwnProperty.call(messages, key);
}

/** The message for key with {name} placeholders filled; the key itself when missing. */
export function t(key, vars = {}) {
  const template = has(key) ? messages[key] : key;
  return template.replace(/\{(\w+)\}/g, (whole, name) =>
    Object.prototype.hasOwnProperty.call(vars, name) ? formatValue(vars[name]) : whole,
  );
}

function formatValue(value) {
  if (typeof value === "number") {
    return new Intl.NumberFormat(current === "id" ? "id-ID" : "en-GB", {
      maximumFractionDigits: 3,
    }).format(value);
  }
  return String(value);
}

export function translate(root) {
  const scope = root.querySelectorAll ? root : document;
  const apply = (node) => {
    const vars = node.dataset.i18nVars ? JSON.parse(node.dataset.i18nVars) : {};
    if (node.dataset.i18n) node.textContent = t(node.dataset.i18n, vars);
    if (node.dataset.i18nAttr) {
      for (const pair of node.dataset.i18nAttr.split(";")) {
        const [attr, key] = pair.split(":");
        if (attr && key) node.setAttribute(attr.trim(), t(key.trim(), vars));
      }
    }
  };
  if (scope.dataset && (scope.dataset.i18n || scope.dataset.i18nAttr)) apply(scope);
  for (const node of scope.querySelectorAll("[data-i18n], [data-i18n-attr]")) apply(node);
}

/** Give an element a translated text that follows language switches. */
export function label(node, key, vars) {
  node.dataset.i18n = key;
  if (vars && Object.keys(vars).length) node.dataset.i18nVars = JSON.stringify(vars);
  else delete node.dataset.i18nVars;
  node.textContent = t(key, vars || {});
  return node;
}

export function formatNumber(value, digits = 3) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  return new Intl.NumberFormat(current === "id" ? "id-ID" : "en-GB", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  }).format(value);
}
