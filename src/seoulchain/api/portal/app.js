// The portal's shell: language, navigation, search and the hash routes (`#/block/12`), so
// every page is a permalink that survives a reload.

import { getServices, loadKeyNames } from "./api.js";
import { h, replace } from "./dom.js";
import { initI18n, onLanguageChange, t } from "./i18n.js";
import { renderBlock, renderBlocks, renderHome, renderTx, renderTxs } from "./pages/chain.js";
import {
  renderCredentials, renderDid, renderDocument, renderFunds, renderGov, renderMileage,
  renderPolls, renderVehicle,
} from "./pages/services.js";
import { renderValidators } from "./pages/validators.js";
import { findRoute } from "./search.js";

// Route patterns: `:name` takes one path segment, `*name` the rest of the path.
const ROUTES = [
  ["/", renderHome, "home"],
  ["/blocks", renderBlocks, "blocks"],
  ["/block/:height", renderBlock, "blocks"],
  ["/txs", renderTxs, "txs"],
  ["/tx/:hash", renderTx, "txs"],
  ["/validators", renderValidators, "validators"],
  ["/vehicle", renderVehicle, "vehicle"],
  ["/vehicle/:vin", renderVehicle, "vehicle"],
  ["/document", renderDocument, "document"],
  ["/document/:hash", renderDocument, "document"],
  ["/funds", renderFunds, "funds"],
  ["/funds/campaign/:campaign", renderFunds, "funds"],
  ["/funds/contract/:contract", renderFunds, "funds"],
  ["/mileage", renderMileage, "mileage"],
  ["/gov", renderGov, "gov"],
  ["/credentials", renderCredentials, "credentials"],
  ["/credentials/*list", renderCredentials, "credentials"],
  ["/polls", renderPolls, "polls"],
  ["/polls/:poll", renderPolls, "polls"],
  ["/did/*did", renderDid, null],
];

const main = document.getElementById("view");
let stopView = null;
let renderCount = 0;

function matchRoute(path) {
  const parts = path.split("/").filter(Boolean);
  for (const [pattern, render, section] of ROUTES) {
    const names = pattern.split("/").filter(Boolean);
    const params = {};
    let matched = true;
    for (const [index, name] of names.entries()) {
      if (name.startsWith("*")) {
        params[name.slice(1)] = decodeURIComponent(parts.slice(index).join("/"));
        matched = parts.length > index;
        break;
      }
      if (index >= parts.length) { matched = false; break; }
      if (name.startsWith(":")) params[name.slice(1)] = decodeURIComponent(parts[index]);
      else if (name !== parts[index]) { matched = false; break; }
      if (index === names.length - 1 && parts.length !== names.length) matched = false;
    }
    if (names.length === 0 && parts.length !== 0) matched = false;
    if (matched) return { render, params, section };
  }
  return null;
}

/** Go to a portal route, with optional query values (a permalink in the address bar). */
export function navigate(path, values = {}) {
  const query = new URLSearchParams(values).toString();
  location.hash = query ? `${path}?${query}` : path;
}

async function showRoute() {
  const [path, search = ""] = (location.hash.slice(1) || "/").split("?");
  const found = matchRoute(path);
  const count = ++renderCount;
  if (stopView) stopView();
  stopView = null;
  for (const anchor of document.querySelectorAll(".site-nav a")) {
    anchor.toggleAttribute("aria-current", anchor.dataset.section === found?.section);
    if (anchor.dataset.section === found?.section) anchor.setAttribute("aria-current", "page");
  }
  if (!found) {
    replace(main, h("p", { class: "notice" }, t("common.not_found")));
    return;
  }
  replace(main, h("p", { class: "muted" }, t("common.loading")));
  main.setAttribute("aria-busy", "true");
  try {
    const stop = await found.render(main, found.params, new URLSearchParams(search), navigate);
    if (count === renderCount) stopView = typeof stop === "function" ? stop : null;
    else if (typeof stop === "function") stop();
  } catch (error) {
    if (count === renderCount) {
      replace(main, h("p", { class: "notice error", role: "alert" },
        t("common.error", { detail: error.message })));
    }
  } finally {
    if (count === renderCount) main.removeAttribute("aria-busy");
  }
}

async function showInstalledServices() {
  const services = await getServices();
  for (const anchor of document.querySelectorAll(".site-nav a[data-service]")) {
    anchor.hidden = !services[anchor.dataset.service];
  }
}

function wireSearch() {
  const form = document.getElementById("search");
  const input = form.querySelector("input");
  const message = document.getElementById("search-message");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const route = await findRoute(input.value).catch(() => null);
    message.hidden = route !== null;
    if (route === null) {
      message.textContent = `${t("search.nothing", { query: input.value.trim() })} ` +
        t("search.hint");
      return;
    }
    location.hash = route;
  });
}

async function start() {
  // The strings, the installed services and the key holders' names load side by side.
  const services = showInstalledServices().catch(() => null);
  const names = loadKeyNames().catch(() => null);
  await initI18n();
  wireSearch();
  await Promise.all([services, names]);
  window.addEventListener("hashchange", showRoute);
  onLanguageChange(showRoute);
  await showRoute();
  performance.mark("portal-ready");
  document.body.dataset.ready = "true";
}

start();
