// The city services' pages: vehicle history, document check, funds, mileage, governance,
// credential status, polls and DIDs, each reading its service's generated query routes.

import { ApiProblem, getJson, getServices, runQuery } from "../api.js";
import { card, fields, h, link, rawJson, replace } from "../dom.js";
import { formatNumber, t } from "../i18n.js";
import { answerNode, fieldLabel, listNode, valueNode } from "../render.js";
import { dataList } from "../table.js";

const PROPOSALS_MAX = 100;  // the governance page lists this many latest proposals
const FUNDS_PAGE_ITEMS = 100;  // campaigns or contracts per page (the funds queries' maximum)
// The funds page's lists: the query, the record's number field and route, the columns.
const FUNDS_LISTS = [
  { query: "campaigns", number: "campaign", title: "funds.campaigns",
    columns: ["purpose", "target_krw", "received_krw", "spent_krw", "balance_krw", "height"] },
  { query: "contracts", number: "contract", title: "funds.contracts",
    columns: ["title", "paid_krw", "payments", "height"] },
];
// The vote service's queries a poll's page shows, in order, when the service has them.
const POLL_QUERIES = [["poll", "polls.poll"], ["turnout", "polls.turnout"],
  ["result", "polls.results"]];

/** Return a lookup form: one text input and a button; submitting navigates to a route. */
function lookupForm(labelKey, name, value, onSubmit, placeholderKey = null) {
  const input = h("input", { name, value: value ?? "", required: true, autocomplete: "off",
    spellcheck: "false", placeholder: placeholderKey ? t(placeholderKey) : null });
  const form = h("form", { class: "inline" }, h("label", {}, t(labelKey), input),
    h("button", { type: "submit", class: "primary" }, t("common.lookup")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    onSubmit(input.value.trim());
  });
  return form;
}

function page(main, titleKey, introKey, ...children) {
  replace(main, h("h1", {}, t(titleKey)), introKey ? h("p", {}, t(introKey)) : null, ...children);
}

/** Return the answer of a query, or null when the service refuses the argument as unknown. */
async function queryOrNull(service, name, args) {
  try {
    return (await runQuery(service, name, args)).result;
  } catch (error) {
    if (error instanceof ApiProblem && error.code === "bad_query") return null;
    throw error;
  }
}

/** Render the vehicle page: a VIN form, then the vehicle's record and history. */
export async function renderVehicle(main, params, query, navigate) {
  const vin = params.vin ? params.vin.toUpperCase() : "";
  const result = h("div");
  page(main, "vehicle.title", "vehicle.intro",
    lookupForm("vehicle.vin", "vin", vin, (value) => navigate(`/vehicle/${value.toUpperCase()}`)),
    result);
  if (!vin) return;
  const answer = await queryOrNull("vehicle", "history", { vin });
  if (!answer) {
    replace(result, h("p", { class: "notice" }, t("vehicle.none")));
    return;
  }
  const vehicle = answer.vehicle;
  replace(result,
    card(t("vehicle.record"), fields([
      [t("vehicle.vin"), vehicle.vin],
      [t("vehicle.model"), valueNode("model", vehicle.model)],
      [t("vehicle.status"), valueNode("status", vehicle.status)],
      [t("vehicle.owner"), valueNode("owner", vehicle.owner)],
      [t("vehicle.odometer"), valueNode("odometer_km", vehicle.odometer_km)],
      [fieldLabel("registered_height"), valueNode("height", vehicle.registered_height)],
    ])),
    card(t("vehicle.history"), listNode(`vehicle-${vin}-history`, answer.entries)));
}

/** Render the document check: a hash form, then the issuer's record and its status. */
export async function renderDocument(main, params, query, navigate) {
  const docHash = (params.hash ?? "").toLowerCase().replace(/^sha256:/, "");
  const result = h("div");
  page(main, "document.title", "document.intro",
    h("p", {}, h("a", { href: "verify.html" }, t("nav.verify"))),
    lookupForm("document.hash", "doc_hash", docHash, (value) => navigate(`/document/${value}`)),
    result);
  if (!docHash) return;
  const services = await getServices();
  const status = await getJson("/v1/status");
  const checked = services.document ? await queryOrNull("document", "check",
    { doc_hash: docHash, at_ms: status.block_time_ms }) : null;
  const anchored = services.notary ? await queryOrNull("notary", "document",
    { doc_hash: docHash }) : null;
  const issued = checked?.tx ? checked : null;
  if (!issued && !anchored) {
    replace(result, h("p", { class: "notice" }, t("document.unknown")));
    return;
  }
  replace(result,
    issued ? card(t("document.issued"), h("p", { class: "verdict" },
      valueNode("status", issued.status)), answerNode(issued)) : null,
    anchored ? card(t("document.notary"), answerNode(anchored)) : null);
}

/** Return a card listing a funds record kind newest first; "load more" adds a page. */
async function fundsListCard(kind) {
  const rows = [];
  const list = h("div");
  const more = h("button", { type: "button", dataset: { more: kind.query } }, t("txs.more"));
  const columns = [kind.number, ...kind.columns].map((name) => ({ name,
    labelText: fieldLabel(name), cell: name === kind.number ?
      (row) => link(`/funds/${kind.number}/${row[name]}`, formatNumber(row[name])) :
      (row) => valueNode(name, row[name], true) }));
  async function loadPage() {
    const before = rows.length ? { before: rows[rows.length - 1][kind.number] } : {};
    const page = (await runQuery("funds", kind.query,
      { limit: FUNDS_PAGE_ITEMS, ...before })).result;
    rows.push(...page);
    more.hidden = page.length < FUNDS_PAGE_ITEMS || rows[rows.length - 1][kind.number] <= 1;
    replace(list, dataList({ name: `funds-${kind.query}`, columns, rows, filterable: false }));
  }
  more.addEventListener("click", () => {
    more.disabled = true;
    loadPage().finally(() => { more.disabled = false; });
  });
  await loadPage();
  return card(t(kind.title), list, more);
}

/** Render the funds page: the campaigns and contracts, or one by number with its history. */
export async function renderFunds(main, params, query, navigate) {
  const result = h("div");
  page(main, "funds.title", "funds.intro",
    lookupForm("funds.campaign", "campaign", params.campaign,
      (value) => navigate(`/funds/campaign/${value}`)),
    lookupForm("funds.contract", "contract", params.contract,
      (value) => navigate(`/funds/contract/${value}`)),
    result);
  if (params.campaign) {
    const campaign = await queryOrNull("funds", "campaign", { campaign: params.campaign });
    const history = campaign ? await queryOrNull("funds", "history",
      { campaign: params.campaign, limit: 100 }) : null;
    replace(result, card(t("funds.campaign"), answerNode(campaign)),
      campaign ? card(t("funds.history"), listNode(`campaign-${params.campaign}`,
        history ?? [])) : null);
  } else if (params.contract) {
    const contract = await queryOrNull("funds", "contract", { contract: params.contract });
    const payments = contract ? await queryOrNull("funds", "payments",
      { contract: params.contract, limit: 100 }) : null;
    replace(result, card(t("funds.contract"), answerNode(contract)),
      contract ? card(t("funds.payments"), listNode(`contract-${params.contract}`,
        payments ?? [])) : null);
  } else {
    replace(result, ...await Promise.all(FUNDS_LISTS.map(fundsListCard)));
  }
}

function stat(labelKey, value) {
  return h("div", { class: "stat" }, h("div", { class: "value" }, formatNumber(value)),
    h("div", { class: "label" }, t(labelKey)));
}

/** Render the mileage page: the points issued, redeemed, expired and outstanding. */
export async function renderMileage(main) {
  const answer = await runQuery("mileage", "supply");
  const supply = answer.result;
  page(main, "mileage.title", "mileage.intro",
    h("p", { class: "muted" }, t("common.height_at", { height: formatNumber(answer.height) })),
    h("div", { class: "stats" }, stat("mileage.minted", supply.minted),
      stat("mileage.burned", supply.burned), stat("mileage.expired", supply.expired),
      stat("mileage.outstanding", supply.outstanding)));
}

/** Render the governance page: proposals (filterable by status) and chain parameters. */
export async function renderGov(main) {
  const [proposals, parameters] = await Promise.all([
    runQuery("gov", "proposals", { limit: PROPOSALS_MAX }), runQuery("gov", "parameters")]);
  page(main, "gov.title", "gov.intro",
    card(t("gov.proposals"), listNode("proposals", proposals.result)),
    card(t("gov.parameters"), answerNode(parameters.result)));
}

/** Render the credential status page: a status list by its ID. */
export async function renderCredentials(main, params, query, navigate) {
  const result = h("div");
  page(main, "credentials.title", "credentials.intro",
    lookupForm("credentials.list_id", "list_id", params.list,
      (value) => navigate(`/credentials/${encodeURIComponent(value)}`)),
    result);
  if (!params.list) return;
  const list = await queryOrNull("vc", "status_list", { list_id: params.list });
  replace(result, card(t("credentials.list_id"), answerNode(list)));
}

/** Render a DID's document and history. */
export async function renderDid(main, params) {
  const did = params.did;
  const answer = await queryOrNull("did", "resolve", { did });
  // A DID Core resolution result: no document (and an error named) for an unknown DID.
  const resolved = answer?.didDocument ? answer : null;
  const history = resolved ? await queryOrNull("did", "history", { did }) : null;
  replace(main, h("h1", {}, t("did.title")), h("p", { class: "hash" }, did),
    resolved ? [card(t("did.document"), rawJson(resolved)),
      card(t("did.history"), answerNode(history))] :
      h("p", { class: "notice" }, t("did.none")));
}

/** Return a form that runs one query of a service from its argument schema. */
function queryForm(service, name, query) {
  const properties = query.args.properties ?? {};
  const required = new Set(query.args.required ?? []);
  const answer = h("div");
  const form = h("form", { class: "inline" },
    Object.keys(properties).map((arg) => h("label", {}, arg,
      h("input", { name: arg, required: required.has(arg), autocomplete: "off" }))),
    h("button", { type: "submit" }, t("query.run")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const result = await runQuery(service, name, Object.fromEntries(new FormData(form)));
      replace(answer, answerNode(result.result));
    } catch (error) {
      replace(answer, h("p", { class: "notice error" },
        t("common.error", { detail: error.message })));
    }
  });
  return h("div", { class: "query" }, h("h3", {}, name),
    h("p", { class: "muted" }, query.description), form, answer);
}

/** Render the polls page from the vote service's own queries (shown only if installed). */
export async function renderPolls(main, params, query, navigate) {
  const services = await getServices();
  const vote = services.vote;
  if (!vote) {
    page(main, "polls.title", null, h("p", { class: "notice" }, t("common.unknown_service")));
    return;
  }
  const queries = Object.entries(vote.queries);
  const result = h("div");
  page(main, "polls.title", "polls.intro",
    lookupForm("polls.poll_id", "poll_id", params.poll,
      (value) => navigate(`/polls/${encodeURIComponent(value)}`)),
    result, card(t("query.title"), queries.map(([name, query]) => queryForm("vote", name, query))));
  if (!params.poll) return;
  const shown = POLL_QUERIES.filter(([name]) => vote.queries[name]);
  const answers = await Promise.all(shown.map(([name]) =>
    queryOrNull("vote", name, { poll_id: params.poll })));
  if (answers[0] === null) {
    replace(result, h("p", { class: "notice" }, t("polls.none")));
    return;
  }
  replace(result, shown.map(([, titleKey], index) => card(t(titleKey), answerNode(answers[index]))));
}


