// The portal's languages: every string a person reads comes from i18n/<lang>.json.
//
// Theory of operation: one flat strings file per language (key -> text, `{name}` marks a
// value filled in by `t(key, {name: value})`); both files hold the same keys
// (tests/portal/test_i18n.py checks it). In HTML, an element's text comes from
// `data-i18n="key"`, and its attributes from `data-i18n-placeholder`, `data-i18n-title`,
// `data-i18n-aria-label` and `data-i18n-alt`. In JavaScript, text shown to people is
// always `t("key")`. The language is chosen by `?lang=`, then the saved choice, then the
// browser's language, else Korean; a `[data-lang]` button switches it.

export const LANGUAGES = ["ko", "en"];
export const DEFAULT_LANGUAGE = "ko";
const STORAGE_KEY = "seoulchain.portal.lang";
const ATTRIBUTES = ["placeholder", "title", "aria-label", "alt"];

let current = DEFAULT_LANGUAGE;
let strings = {};
const listeners = new Set();

/** Return the language in use ("ko" or "en"). */
export function getLanguage() {
  return current;
}

/** Return the text of `key` in the current language with `{name}` values filled in. */
export function t(key, values = {}) {
  const text = Object.hasOwn(strings, key) ? strings[key] : key;
  return text.replace(/\{(\w+)\}/g, (whole, name) =>
    Object.hasOwn(values, name) ? String(values[name]) : whole);
}

/** Return whether the current language has a string for `key`. */
export function hasString(key) {
  return Object.hasOwn(strings, key);
}

/** Fill every `data-i18n*` element under `root` with the current language's text. */
export function applyTranslations(root = document) {
  for (const element of root.querySelectorAll("[data-i18n]")) {
    element.textContent = t(element.dataset.i18n);
  }
  for (const attribute of ATTRIBUTES) {
    for (const element of root.querySelectorAll(`[data-i18n-${attribute}]`)) {
      element.setAttribute(attribute, t(element.getAttribute(`data-i18n-${attribute}`)));
    }
  }
  for (const button of root.querySelectorAll("[data-lang]")) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === current));
  }
}

/** Call `listener(language)` after every language change; returns a function to stop. */
export function onLanguageChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

async function loadStrings(language) {
  const url = new URL(`./i18n/${language}.json`, import.meta.url);
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}

/** Switch to `language`, save the choice, re-translate the page and tell the listeners. */
export async function setLanguage(language) {
  const chosen = LANGUAGES.includes(language) ? language : DEFAULT_LANGUAGE;
  strings = await loadStrings(chosen);
  current = chosen;
  try {
    localStorage.setItem(STORAGE_KEY, chosen);
  } catch {
    // Storage refused (private mode): the choice lasts for this page only.
  }
  document.documentElement.lang = chosen;
  applyTranslations();
  for (const listener of listeners) listener(chosen);
}

function chooseLanguage() {
  const asked = new URLSearchParams(location.search).get("lang");
  if (LANGUAGES.includes(asked)) return asked;
  let saved = null;
  try {
    saved = localStorage.getItem(STORAGE_KEY);
  } catch {
    saved = null;
  }
  if (LANGUAGES.includes(saved)) return saved;
  const browser = (navigator.language || "").slice(0, 2);
  return LANGUAGES.includes(browser) ? browser : DEFAULT_LANGUAGE;
}

/** Load the chosen language, translate the page and wire the `[data-lang]` buttons. */
export async function initI18n() {
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-lang]");
    if (button) setLanguage(button.dataset.lang);
  });
  await setLanguage(chooseLanguage());
}

/** Format a number for the current language. */
export function formatNumber(value) {
  return new Intl.NumberFormat(current === "ko" ? "ko-KR" : "en-GB").format(value);
}

/** Format a millisecond Unix time for the current language, in Seoul time. */
export function formatTime(timeMs) {
  return new Intl.DateTimeFormat(current === "ko" ? "ko-KR" : "en-GB", {
    dateStyle: "medium", timeStyle: "medium", timeZone: "Asia/Seoul",
  }).format(new Date(timeMs));
}
