// Showing a service's answer (JSON) to people: known fields by their translated names,
// transaction hashes and heights as links, lists of records as tables with export.

import { getKeyName } from "./api.js";
import { badge, fields, h, link, shortHash } from "./dom.js";
import { formatNumber, formatTime, hasString, t } from "./i18n.js";
import { dataList } from "./table.js";

const HEX_HASH = /^[0-9a-f]{64}$/;
const TABLE_COLUMNS_MAX = 8;  // wider records are shown whole in the JSON export

/** Return a field's label: its translation (`field.<name>`) or the name itself. */
export function fieldLabel(name) {
  return hasString(`field.${name}`) ? t(`field.${name}`) : name;
}

/** Return a public key (hex) as its holder's name with the key shortened, if known. */
export function keyNode(hex, compact = false) {
  const name = getKeyName(hex);
  const key = compact || name ? shortHash(hex) : h("span", { class: "hash" }, hex);
  return name ? [h("strong", {}, name), " ", key] : key;
}

/** Return a node showing `value` of the field `name` (`compact`: shortened, for tables). */
export function valueNode(name, value, compact = false) {
  if (value === null || value === undefined) return h("span", { class: "muted" }, t("common.none"));
  if (typeof value === "boolean") return t(value ? "common.yes" : "common.no");
  if (typeof value === "number") {
    if (name.endsWith("_ms") && value > 1e12) return formatTime(value);
    if (name === "height" || name.endsWith("_height")) return link(`/block/${value}`, formatNumber(value));
    return formatNumber(value);
  }
  if (typeof value === "string") {
    if ((name === "tx" || name.endsWith("_tx")) && HEX_HASH.test(value)) {
      return link(`/tx/${value}`, shortHash(value));
    }
    if (name === "status" || name === "kind" || name === "result") {
      return hasString(`value.${value}`) ? badge(t(`value.${value}`)) : badge(value);
    }
    if (HEX_HASH.test(value)) return keyNode(value, compact);
    if (value.startsWith("did:")) return link(`/did/${value}`, value);
    return value;
  }
  if (Array.isArray(value)) return listNode(name, value);
  return objectNode(value);
}

/** Return a definition list of an object's fields. */
export function objectNode(object) {
  return fields(Object.entries(object).map(([name, value]) =>
    [fieldLabel(name), valueNode(name, value)]));
}

/** Return a list's items: a table (with export) for records, else a plain list. */
export function listNode(name, items) {
  if (items.length === 0) return h("span", { class: "muted" }, t("common.empty"));
  if (!items.every((item) => item && typeof item === "object" && !Array.isArray(item))) {
    return h("ul", {}, items.map((item) => h("li", {}, valueNode(name, item, true))));
  }
  const names = [...new Set(items.flatMap((item) => Object.keys(item)))]
    .slice(0, TABLE_COLUMNS_MAX);
  const columns = names.map((column) => ({ name: column, labelText: fieldLabel(column),
    cell: (row) => valueNode(column, row[column], true) }));
  return dataList({ name, rows: items, filterable: false, columns });
}

/** Return the node for a query's answer (`null` reads as "not found"). */
export function answerNode(result, notFoundKey = "common.not_found") {
  if (result === null || result === undefined) return h("p", { class: "notice" }, t(notFoundKey));
  if (Array.isArray(result)) return listNode("answer", result);
  if (typeof result === "object") return objectNode(result);
  return h("p", {}, valueNode("value", result));
}
