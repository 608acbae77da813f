// The validators that certify blocks and the consortium of agencies behind them.

import { getPages, getServices, runQuery } from "../api.js";
import { card, h, replace, shortHash } from "../dom.js";
import { formatNumber, t } from "../i18n.js";
import { dataList } from "../table.js";

const VALIDATORS_MAX = 1000;  // more than any city consortium runs

const VALIDATOR_COLUMNS = [
  { name: "agency", label: "col.agency", value: (row) => row.agency ?? "",
    cell: (row) => row.agency ?? t("common.none") },
  { name: "name", label: "col.validator" },
  { name: "power", label: "col.power", cell: (row) => formatNumber(row.power) },
  { name: "public_key", label: "col.key", cell: (row) => shortHash(row.public_key, 16) },
];

const MEMBER_COLUMNS = [
  { name: "name", label: "col.agency" },
  { name: "since_height", label: "col.height" },
  { name: "keys", label: "col.key", value: (row) => row.keys.join(" "),
    cell: (row) => row.keys.map((key) => shortHash(key, 16)) },
];

/** Render the validator set at the tip and the governance members. */
export async function renderValidators(main) {
  const [page, services] = await Promise.all([
    getPages(`/v1/validators?limit=100`, VALIDATORS_MAX), getServices()]);
  const members = services.gov ? (await runQuery("gov", "members")).result : null;
  replace(main, h("h1", {}, t("validators.title")), h("p", {}, t("validators.intro")),
    card(t("home.validators"),
      h("p", {}, t("validators.total", { power: formatNumber(page.total_power) })),
      dataList({ name: "validators", columns: VALIDATOR_COLUMNS, rows: page.items,
        filterable: false })),
    members ? card(t("validators.members"),
      h("p", {}, t("validators.threshold", { threshold: members.threshold,
        members: members.members.length })),
      dataList({ name: "members", columns: MEMBER_COLUMNS, rows: members.members,
        filterable: false })) : null);
}
