// Blocks and transactions: the overview, the lists, a block with its commit, a decoded tx.

import { getJson, getKeyName, getPages, getTx } from "../api.js";
import { badge, card, fields, h, link, rawJson, replace, shortHash } from "../dom.js";
import { formatNumber, formatTime, t } from "../i18n.js";
import { fieldLabel, keyNode, valueNode } from "../render.js";
import { dataList } from "../table.js";

const HOME_BLOCKS = 8;  // the latest blocks on the overview
const HOME_TXS = 10;  // the latest transactions on the overview
const LIST_BLOCKS = 100;  // blocks in the blocks list (one page of the API's maximum)
const LIST_TXS = 100;  // transactions one page of the list loads (the API's page maximum)
// A `datetime-local` filter has minute precision: "to" includes the whole minute.
const MINUTE_LAST_MS = 59999;
const POLL_MS = 3000;  // without the event stream, the overview asks for the tip this often

/** Return a badge for a result code (0 succeeded) or a tx status word. */
export function statusBadge(status) {
  const tone = { ok: "ok", failed: "bad", pending: "wait", unknown: "" }[status] ?? "";
  return badge(t(`status.${status}`), tone);
}

/** Return a map from validator public key to {name, agency} at `height`. */
export async function getSigners(height) {
  const page = await getPages(`/v1/validators?height=${height}&limit=100`, 1000);
  return { total: page.total_power,
    byKey: new Map(page.items.map((item) => [item.public_key, item])) };
}

function agencyName(signer) {
  if (!signer) return t("common.none");
  return signer.agency ?? signer.name ?? t("common.none");
}

function blockRow(item) {
  return { height: item.height, time_ms: item.header.time_ms, tx_count: item.tx_count,
    proposer: item.header.proposer, signatures: item.commit?.signatures.length ?? 0,
    block_id: item.block_id, export: item };
}

const BLOCK_COLUMNS = [
  { name: "height", label: "col.height", cell: (row) => link(`/block/${row.height}`,
    formatNumber(row.height)) },
  { name: "time_ms", label: "col.time", cell: (row) => formatTime(row.time_ms),
    value: (row) => new Date(row.time_ms).toISOString() },
  { name: "tx_count", label: "col.txs", cell: (row) => formatNumber(row.tx_count) },
  { name: "signatures", label: "col.signatures" },
  { name: "block_id", label: "block.id", cell: (row) => shortHash(row.block_id) },
];

const TX_COLUMNS = [
  { name: "hash", label: "col.hash", cell: (row) => link(`/tx/${row.hash}`, shortHash(row.hash)) },
  { name: "height", label: "col.height", cell: (row) => link(`/block/${row.height}`,
    formatNumber(row.height)) },
  { name: "time_ms", label: "col.time", cell: (row) => formatTime(row.time_ms),
    value: (row) => new Date(row.time_ms).toISOString() },
  { name: "service", label: "col.service" },
  { name: "method", label: "col.method" },
  { name: "status", label: "col.status", cell: (row) => statusBadge(row.status) },
];

/** Return a row of the transactions list from an item of `GET /v1/txs`. */
function listedTxRow(item) {
  return { hash: item.hash, height: item.height, index: item.index, time_ms: item.time_ms,
    service: item.service, method: item.method, status: item.code === 0 ? "ok" : "failed",
    export: item };
}

/** Return the `GET /v1/txs` query of the list's filters {from, to, service, status}. */
function txListQuery(filters, limit) {
  const query = new URLSearchParams({ limit: String(limit) });
  if (filters.service) query.set("service", filters.service);
  if (filters.status) query.set("status", filters.status);
  const from = Date.parse(filters.from ?? "");
  const to = Date.parse(filters.to ?? "");
  if (Number.isFinite(from)) query.set("from_time", String(Math.max(0, from)));
  if (Number.isFinite(to)) query.set("to_time", String(Math.max(0, to + MINUTE_LAST_MS)));
  return query;
}

/** Return the transactions of the given blocks (newest first) as list rows. */
async function txRows(blocks, rowsMax) {
  const rows = [];
  for (const block of blocks) {
    if (block.tx_count === 0) continue;
    const page = await getPages(`/v1/blocks/${block.height}/txs?limit=100`, rowsMax);
    const txs = await Promise.all(page.items.map((item) => getTx(item.hash)));
    for (const [offset, item] of page.items.entries()) {
      const body = txs[offset].tx ?? {};
      rows.push({ hash: item.hash, height: block.height, index: item.index,
        time_ms: block.header.time_ms, service: body.service, method: body.method,
        status: item.code === 0 ? "ok" : "failed",
        export: { ...txs[offset], time_ms: block.header.time_ms } });
    }
    if (rows.length >= rowsMax) break;
  }
  return rows.slice(0, rowsMax);
}

function stat(labelKey, value) {
  return h("div", { class: "stat" }, h("div", { class: "value" }, value),
    h("div", { class: "label" }, t(labelKey)));
}

/** Render the overview: the tip, the latest blocks and txs, refreshed while shown. */
export async function renderHome(main) {
  let shownHeight = -1;
  let stopped = false;
  const live = h("p", { class: "muted", role: "status" });
  const stats = h("div", { class: "stats" });
  const blocks = h("div");
  const txs = h("div");
  replace(main, h("h1", {}, t("home.title")), h("p", {}, t("site.tagline")), stats,
    live, h("div", { class: "grid" },
      card(t("home.latest_blocks"), blocks, link("/blocks", t("home.all_blocks"))),
      card(t("home.latest_txs"), txs, link("/txs", t("home.all_txs")))));
  let running = null;
  let again = false;
  async function refresh() {
    // One refresh at a time; a block that arrives meanwhile asks for one more.
    if (running) { again = true; return running; }
    running = update().finally(() => { running = null; });
    await running;
    if (again && !stopped) { again = false; await refresh(); }
  }
  async function update() {
    try {
      const status = await getJson("/v1/status");
      replace(live, h("span", { class: "live-dot", "aria-hidden": "true" }), t("common.live"));
      const changed = status.height !== shownHeight;
      const [validators, page, latest] = status.height > 0 ? await Promise.all([
        getSigners(status.height),
        changed ? getJson(`/v1/blocks?limit=${HOME_BLOCKS}`) : null,
        changed ? getJson(`/v1/txs?limit=${HOME_TXS}`) : null]) : [null, null, null];
      replace(stats, stat("home.height", formatNumber(status.height)),
        stat("home.block_time", status.height > 0 ? formatTime(status.block_time_ms) : "—"),
        stat("home.mempool", formatNumber(status.mempool_txs)),
        stat("home.validators", validators ? formatNumber(validators.byKey.size) : "—"),
        stat("home.chain", status.chain_id));
      if (!changed) return;
      const items = page?.items ?? [];
      const rows = (latest?.items ?? []).map(listedTxRow);
      shownHeight = status.height;
      replace(blocks, dataList({ name: "latest-blocks", columns: BLOCK_COLUMNS.slice(0, 3),
        rows: items.slice(0, HOME_BLOCKS).map(blockRow), filterable: false }));
      replace(txs, dataList({ name: "latest-txs", columns: [TX_COLUMNS[0], TX_COLUMNS[3],
        TX_COLUMNS[4], TX_COLUMNS[5]], rows, filterable: false }));
    } catch {
      replace(live, h("span", { class: "notice error" }, t("common.offline")));
    }
  }
  await refresh();
  const stream = openBlockStream(() => { if (!stopped) refresh(); });
  // Polling is the fallback while the event stream is not open (an older node, a proxy
  // that buffers streams): the overview stays live either way.
  const timer = setInterval(() => {
    if (!stopped && stream?.readyState !== EventSource.OPEN) refresh();
  }, POLL_MS);
  return () => { stopped = true; clearInterval(timer); stream?.close(); };
}

/** Return an event stream of committed blocks calling `onBlock`, or null without one. */
function openBlockStream(onBlock) {
  if (typeof EventSource !== "function") return null;
  const stream = new EventSource("/v1/events?types=block");
  stream.addEventListener("block", onBlock);
  return stream;
}

/** Render the blocks list with filters and export. */
export async function renderBlocks(main, params, query, navigate) {
  const page = await getPages(`/v1/blocks?limit=100`, LIST_BLOCKS);
  const filters = Object.fromEntries(query);
  replace(main, h("h1", {}, t("blocks.title")), card(null, dataList({
    name: "blocks", columns: BLOCK_COLUMNS, rows: page.items.map(blockRow), filters,
    onFilter: (chosen) => navigate("/blocks", chosen) })));
}

/** Render the committed transactions, newest first, filtered by the node; each "load
 * more" adds the next page, and the export holds every row loaded. */
export async function renderTxs(main, params, query, navigate) {
  const filters = Object.fromEntries(query);
  const rows = [];
  let next = `/v1/txs?${txListQuery(filters, LIST_TXS)}`;
  const scope = h("p", { class: "muted", role: "status" });
  const list = h("div");
  const more = h("button", { type: "button", dataset: { more: "transactions" } },
    t("txs.more"));
  async function loadPage() {
    const page = await getJson(next);
    rows.push(...page.items.map(listedTxRow));
    next = page.next;
    replace(scope, next ? t("txs.scope_more", { count: formatNumber(rows.length),
      height: formatNumber(page.resume_height) }) :
      t("txs.scope_all", { count: formatNumber(rows.length) }));
    more.hidden = !next;
    replace(list, dataList({ name: "transactions", columns: TX_COLUMNS, rows, filters,
      onFilter: (chosen) => navigate("/txs", chosen) }));
  }
  more.addEventListener("click", () => {
    more.disabled = true;
    loadPage().catch((error) => replace(scope, h("span", { class: "notice error" },
      t("common.error", { detail: error.message })))).finally(() => { more.disabled = false; });
  });
  await loadPage();
  replace(main, h("h1", {}, t("txs.title")), scope, card(null, list, more));
}

function commitCard(commit, signers) {
  if (!commit) return card(t("block.commit"), h("p", { class: "muted" }, t("block.no_commit")));
  const signed = commit.signatures.reduce((sum, signature) =>
    sum + (signers.byKey.get(signature.validator)?.power ?? 0), 0);
  const rows = commit.signatures.map((signature) => {
    const signer = signers.byKey.get(signature.validator);
    return { agency: signer?.agency ?? t("common.none"), validator: signer?.name ?? "",
      public_key: signature.validator, power: signer?.power ?? 0,
      signature: signature.signature };
  });
  return card(t("block.commit"),
    h("p", {}, t("block.commit_note", { signed, total: signers.total })),
    fields([[t("block.round"), String(commit.round)]]),
    dataList({ name: `block-${commit.height}-signatures`, filterable: false, rows, columns: [
      { name: "agency", label: "col.agency" },
      { name: "validator", label: "col.validator" },
      { name: "power", label: "col.power" },
      { name: "public_key", label: "col.key", cell: (row) => shortHash(row.public_key, 16) },
    ] }));
}

/** Render one block: its header, its txs and the signatures that certify it. */
export async function renderBlock(main, params) {
  const height = Number(params.height);
  const block = await getJson(`/v1/blocks/${height}`);
  const header = block.header;
  const [signers, txPage, status] = await Promise.all([getSigners(height),
    getPages(`/v1/blocks/${height}/txs?limit=100`, 1000), getJson("/v1/status")]);
  const txs = await txRows([{ height, tx_count: txPage.items.length, header }], 1000);
  replace(main, h("h1", {}, t("block.title", { height: formatNumber(height) })),
    h("p", {}, height > 1 ? link(`/block/${height - 1}`, t("block.prev")) : null, " ",
      height < status.height ? link(`/block/${height + 1}`, t("block.next")) : null),
    h("div", { class: "side-by-side" },
      card(t("block.header"), fields([
        [t("block.id"), h("span", { class: "hash" }, block.block_id)],
        [t("block.time"), formatTime(header.time_ms)],
        [t("block.proposer"), [agencyName(signers.byKey.get(header.proposer)), " ",
          shortHash(header.proposer)]],
        [t("col.txs"), formatNumber(txs.length)],
        [t("block.state_root"), h("span", { class: "hash" }, header.state_root)],
        [t("block.tx_root"), h("span", { class: "hash" }, header.tx_root)],
        [t("block.log_root"), h("span", { class: "hash" }, header.log_root)],
        [t("block.log_size"), formatNumber(header.log_size)],
        [t("block.results_root"), h("span", { class: "hash" }, header.results_root)],
        [t("block.validators_hash"), h("span", { class: "hash" }, header.validators_hash)],
      ])),
      card(t("common.raw"), rawJson(block))),
    card(t("block.txs"), dataList({ name: `block-${height}-txs`, columns: TX_COLUMNS,
      rows: txs, filterable: false })),
    commitCard(block.commit, signers));
}

function argumentRows(args) {
  return Object.entries(args ?? {}).map(([name, value]) => [fieldLabel(name),
    typeof value === "object" && value !== null ? rawJson(value) : valueNode(name, value)]);
}

function eventsList(events) {
  if (!events.length) return h("p", { class: "muted" }, t("tx.no_events"));
  return h("ul", {}, events.map((event) => h("li", {}, h("strong", {}, event.kind),
    fields(argumentRows(event.attributes)))));
}

/** Render one transaction decoded for people, with the raw answer beside it. */
export async function renderTx(main, params) {
  const answer = await getJson(`/v1/txs/${params.hash}`);
  if (answer.status !== "committed") {
    replace(main, h("h1", {}, t("tx.title")), card(null, fields([
      [t("col.hash"), h("span", { class: "hash" }, answer.hash)],
      [t("col.status"), statusBadge(answer.status)]]),
    h("p", {}, t(answer.status === "pending" ? "tx.pending" : "tx.unknown"))));
    return;
  }
  // A node that started from a snapshot has no body for txs below its base height.
  const body = answer.tx ?? { signer: "", args: {}, service: "", method: "" };
  const [block, signers] = await Promise.all([getJson(`/v1/headers/${answer.height}`),
    getSigners(answer.height)]);
  const signer = signers.byKey.get(body.signer);
  const outcome = answer.result.code === 0 ? "ok" : "failed";
  replace(main, h("h1", {}, t("tx.title")),
    h("div", { class: "side-by-side" },
      h("div", {},
        card(t("tx.summary"),
          h("p", { class: "sentence" }, t("tx.sentence", {
            signer: signer ? agencyName(signer) : getKeyName(body.signer) ??
              body.signer.slice(0, 12),
            service: body.service, method: body.method })),
          fields([
            [t("col.hash"), h("span", { class: "hash" }, answer.hash)],
            [t("col.status"), statusBadge(outcome)],
            [t("tx.block"), link(`/block/${answer.height}`, formatNumber(answer.height))],
            [t("col.time"), formatTime(block.header.time_ms)],
            [t("tx.position"), String(answer.index)],
            [t("col.service"), body.service],
            [t("col.method"), body.method],
            [t("col.signer"), keyNode(body.signer)],
            [t("tx.nonce"), String(body.nonce)],
            [t("tx.expiry"), formatNumber(body.expiry_height)],
          ]),
          h("p", {}, h("a", { href: `/v1/proofs/tx/${answer.hash}`,
            download: `tx-${answer.hash}.json` }, t("tx.proof")))),
        card(t("tx.arguments"), fields(argumentRows(body.args))),
        card(t("tx.result"), fields([
          [t("col.status"), [statusBadge(outcome), " ", answer.result.code_name]],
          answer.result.log ? [t("tx.result_log"), answer.result.log] : null]),
        h("h3", {}, t("tx.events")), eventsList(answer.result.events))),
      card(t("common.raw"), rawJson(answer))));
}
