// Lists: a table with filters (time range, service, status) and CSV / JSON export.
//
// A column is {name (the CSV header), label (an i18n key) or labelText (text already
// translated), cell(row) -> node or text, value(row) -> the exported value}.
// Rows may carry `time_ms`, `service` and `status` ("ok" / "failed" / ...); a filter is
// offered for each of those the rows have. Filter choices live in the route's query string
// (`#/txs?service=vehicle&status=failed`) so a filtered list is a permalink.

import { h, replace } from "./dom.js";
import { t } from "./i18n.js";

/** Return the text of one CSV field, quoted when needed and safe to open in a spreadsheet. */
export function csvField(value) {
  let text = value === null || value === undefined ? "" :
    typeof value === "object" ? JSON.stringify(value) : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;  // not a formula in a spreadsheet
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** Return rows as CSV text (RFC 4180, CRLF line ends) under a header of column names. */
export function toCsv(columns, rows) {
  const lines = [columns.map((column) => csvField(column.name))];
  for (const row of rows) {
    lines.push(columns.map((column) => csvField(column.value ? column.value(row) : row[column.name])));
  }
  return lines.map((fields) => fields.join(",")).join("\r\n") + "\r\n";
}

function download(fileName, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const anchor = h("a", { href: url, download: fileName });
  document.body.append(anchor);
  anchor.click();
  anchor.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}


/** Return whether `row` passes the filters {from, to, service, status}. */
export function matches(row, filters) {
  if (filters.from && row.time_ms < Date.parse(filters.from)) return false;
  if (filters.to && row.time_ms > Date.parse(filters.to) + 59999) return false;
  if (filters.service && row.service !== filters.service) return false;
  if (filters.status && row.status !== filters.status) return false;
  return true;
}

function select(name, labelKey, options, chosen) {
  return h("label", {}, t(labelKey), h("select", { name },
    h("option", { value: "" }, t("filter.all")),
    options.map(([value, text]) => h("option", { value, selected: value === chosen }, text))));
}

function filterForm(rows, filters, onChange) {
  const has = (field) => rows.some((row) => row[field] !== undefined);
  const services = [...new Set(rows.map((row) => row.service).filter(Boolean))].sort();
  const statuses = [...new Set(rows.map((row) => row.status).filter(Boolean))].sort();
  const form = h("form", { class: "filters", role: "search" },
    has("time_ms") ? [
      h("label", {}, t("filter.from"), h("input", { type: "datetime-local", name: "from",
        value: filters.from || "" })),
      h("label", {}, t("filter.to"), h("input", { type: "datetime-local", name: "to",
        value: filters.to || "" })),
    ] : null,
    has("service") ? select("service", "filter.service",
      services.map((name) => [name, name]), filters.service) : null,
    has("status") ? select("status", "filter.status",
      statuses.map((name) => [name, t(`status.${name}`)]), filters.status) : null,
    h("button", { type: "submit" }, t("filter.apply")),
    h("button", { type: "reset" }, t("filter.clear")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    onChange(Object.fromEntries([...new FormData(form)].filter(([, value]) => value)));
  });
  form.addEventListener("reset", (event) => {
    event.preventDefault();
    onChange({});
  });
  return form;
}

/** Return a list: filters, export buttons, a count and the table of the matching rows. */
export function dataList({ name, columns, rows, filters = {}, onFilter, filterable = true }) {
  const shown = rows.filter((row) => matches(row, filters));
  const exported = () => shown.map((row) => row.export ?? row);
  const container = h("div", { class: "data-list", dataset: { list: name } });
  const tools = h("div", { class: "list-tools" },
    h("span", { class: "muted" }, t("filter.count", { shown: shown.length,
      total: rows.length })),
    h("button", { type: "button", dataset: { export: "csv" }, onclick: () =>
      download(`${name}.csv`, "text/csv", toCsv(columns, shown)) }, t("export.csv")),
    h("button", { type: "button", dataset: { export: "json" }, onclick: () =>
      download(`${name}.json`, "application/json", JSON.stringify(exported(), null, 2)) },
    t("export.json")));
  const table = shown.length === 0 ? h("p", { class: "muted" }, t("common.empty")) :
    h("div", { class: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, columns.map((column) =>
        h("th", { scope: "col" }, column.labelText ?? t(column.label))))),
      h("tbody", {}, shown.map((row) => h("tr", {}, columns.map((column) =>
        h("td", {}, column.cell ? column.cell(row) : String(row[column.name] ?? ""))))))));
  replace(container,
    filterable && onFilter ? filterForm(rows, filters, onFilter) : null, tools, table);
  return container;
}

