// The `labor` claim (docs/spec/proofs.md §6.5, §7.6): a party's labor record, its list of
// contracts chained by `contracts_digest`, and each contract's record with every amendment,
// work period and payment chained by the contract's own digests.

import { DecodeError, decodeCbor } from "./cbor.js";
import { concatBytes, equalBytes, fromBase64, fromHex, sha256, toHex, utf8 } from "./bytes.js";
import { BLOCK_BYTES_MAX, VerificationError, isBytes, isUint } from "./ledger.js";
import { STATE_PROOF_BYTES_MAX, verifyStateProof } from "./merkle.js";
import { formatTime, renderPublicKey } from "./statement.js";

// The labor service's caps (services/labor.py): contracts per party, entries per contract.
const PARTY_CONTRACTS_MAX = 10000;
const ENTRY_LISTS = [
  { kind: "amendment", field: "amendments", countField: "amendments", digestField: "amendments_digest", itemsMax: 64 },
  { kind: "work", field: "work", countField: "work_records", digestField: "work_digest", itemsMax: 5000 },
  { kind: "payment", field: "payments", countField: "payments", digestField: "payments_digest", itemsMax: 2000 },
];
const STATE_VALUE_BYTES_MAX = BLOCK_BYTES_MAX;
const ROLES = ["employer", "worker"];
const STATUSES = ["proposed", "in_force", "withdrawn", "ended"];
const AMENDMENT_STATUSES = ["proposed", "in_force", "withdrawn"];
const DATE_PATTERN = /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/;
const DIGEST_FIELDS = ENTRY_LISTS.map((list) => list.digestField);
const CONTRACT_FIELDS = ["contract_hash", "employer", "worker", "employer_did", "worker_did", "document_hash",
  "hourly_wage_krw", "start_date", "end_date", "status", "proposed_height", "proposed_tx", "signed_height",
  "signed_tx", "closed_height", "amendments", "pending_amendment", "work_records", "worked_until",
  "minutes_worked", "wages_due_krw", "payments", "wages_paid_krw", ...DIGEST_FIELDS];
const ENTRY_FIELDS = {
  amendment: ["document_hash", "hourly_wage_krw", "proposed_by", "proposed_height", "proposed_tx", "status",
    "closed_height"],
  work: ["period_start", "period_end", "minutes", "hourly_wage_krw", "wage_due_krw", "height", "tx"],
  payment: ["amount_krw", "period_start", "period_end", "height", "tx"],
};

const isHash = (value) => isBytes(value, 32);
const isDate = (value) => typeof value === "string" && DATE_PATTERN.test(value);

function hasExactly(map, names) {
  return map instanceof Map && map.size === names.length && names.every((name) => map.has(name));
}

function requireMap(value, name, keys) {
  if (!(value instanceof Map)) throw new DecodeError(`${name} must be a JSON object`);
  const missing = keys.filter((key) => !value.has(key));
  const extra = [...value.keys()].filter((key) => !keys.includes(key));
  if (missing.length > 0 || extra.length > 0) {
    throw new DecodeError(`${name} fields are wrong (missing ${JSON.stringify(missing)}, unknown ${JSON.stringify(extra)})`);
  }
  return value;
}

function decodeBase64List(value, name, itemsMax) {
  if (!Array.isArray(value) || value.length > itemsMax) throw new DecodeError(`${name} must be a list of at most ${itemsMax} items`);
  return value.map((item, index) => fromBase64(item, `${name} item ${index + 1}`, STATE_VALUE_BYTES_MAX));
}

async function chain(items) {
  // The strict decoder accepted only canonical bytes, so each item is CBOR(entry).
  let digest = new Uint8Array(32);
  for (const bytes of items) digest = await sha256(concatBytes(digest, bytes));
  return digest;
}

function readContract(value, position) {
  const name = `contract ${position}`;
  requireMap(value, name, ["contract_hash", "record", "proof", ...ENTRY_LISTS.map((list) => list.field)]);
  const contractHash = fromHex(value.get("contract_hash"), `${name} contract_hash`, 32);
  const lists = Object.fromEntries(ENTRY_LISTS.map((list) =>
    [list.kind, decodeBase64List(value.get(list.field), `${name} ${list.field}`, list.itemsMax)]));
  return { contractHash, key: utf8(`labor/contract/${toHex(contractHash)}`),
    record: fromBase64(value.get("record"), `${name} record`, STATE_VALUE_BYTES_MAX),
    proof: fromBase64(value.get("proof"), `${name} state tree proof`, STATE_PROOF_BYTES_MAX), lists };
}

export function readLaborClaim(claim) {
  requireMap(claim, "labor proof", ["kind", "party", "key_hash", "record", "proof", "entries", "contracts"]);
  const party = fromHex(claim.get("party"), "party", 32);
  const record = claim.get("record");
  const entries = decodeBase64List(claim.get("entries"), "entries", PARTY_CONTRACTS_MAX);
  const contractsRaw = claim.get("contracts");
  if (!Array.isArray(contractsRaw) || contractsRaw.length > PARTY_CONTRACTS_MAX) {
    throw new DecodeError(`contracts must be a list of at most ${PARTY_CONTRACTS_MAX} items`);
  }
  return { party, key: utf8(`labor/party/${toHex(party)}`), keyHash: claim.get("key_hash"),
    record: record === null ? null : fromBase64(record, "labor party record", STATE_VALUE_BYTES_MAX),
    proof: fromBase64(claim.get("proof"), "state tree proof", STATE_PROOF_BYTES_MAX), entries,
    contracts: contractsRaw.map((item, index) => readContract(item, index + 1)) };
}

async function checkParty(claim) {
  const record = decodeCbor(claim.record, STATE_VALUE_BYTES_MAX);
  if (typeof record === "bigint") {
    throw new VerificationError("the party's record is a bare count written by labor 1.0.0: it carries no digest "
      + "of its contracts yet");
  }
  if (!(hasExactly(record, ["contracts", "contracts_digest"]) && isUint(record.get("contracts"))
    && isHash(record.get("contracts_digest")))) {
    throw new DecodeError("the state value is not a labor party record");
  }
  const count = record.get("contracts");
  if (BigInt(claim.entries.length) !== count || claim.contracts.length !== claim.entries.length) {
    throw new VerificationError(`the party's record counts ${count} contracts, the claim carries `
      + `${claim.entries.length} list entries and ${claim.contracts.length} contracts`);
  }
  const listed = claim.entries.map((bytes, index) => {
    const entry = decodeCbor(bytes, STATE_VALUE_BYTES_MAX);
    if (!(hasExactly(entry, ["contract_hash", "role"]) && isHash(entry.get("contract_hash"))
      && ROLES.includes(entry.get("role")))) {
      throw new DecodeError(`list entry ${index + 1} is not a labor party entry`);
    }
    return entry;
  });
  if (!equalBytes(await chain(claim.entries), record.get("contracts_digest"))) {
    throw new VerificationError("the list entries do not chain to the party's contracts_digest: a contract was "
      + "changed, dropped, added or reordered");
  }
  return listed;
}

function decodeContract(bytes, number) {
  const record = decodeCbor(bytes, STATE_VALUE_BYTES_MAX);
  const undigested = CONTRACT_FIELDS.filter((name) => !DIGEST_FIELDS.includes(name));
  if (hasExactly(record, undigested)) {
    throw new VerificationError(`contract ${number} was written by labor 1.0.0 and not since the upgrade: it `
      + "carries no digests of its entries yet");
  }
  if (!hasExactly(record, CONTRACT_FIELDS)) throw new DecodeError(`contract ${number}'s state value is not a labor contract record`);
  const get = (name) => record.get(name);
  const signed = get("signed_height") !== null;
  const checks = {
    keys: ["employer", "worker"].every((name) => isBytes(get(name), 32)),
    hashes: ["contract_hash", "document_hash", "proposed_tx", ...DIGEST_FIELDS].every((name) => isHash(get(name))),
    dates: isDate(get("start_date")) && (get("end_date") === null || isDate(get("end_date"))),
    status: STATUSES.includes(get("status")),
    signed: (get("signed_tx") !== null) === signed && (!signed || (isUint(get("signed_height")) && isHash(get("signed_tx")))),
    integers: ["hourly_wage_krw", "proposed_height", "amendments", "work_records", "payments", "minutes_worked",
      "wages_due_krw", "wages_paid_krw"].every((name) => isUint(get(name))),
  };
  for (const [name, ok] of Object.entries(checks)) {
    if (!ok) throw new DecodeError(`contract ${number}'s record has malformed ${name}`);
  }
  return record;
}

const ENTRY_CHECKS = {
  amendment: (entry) => {
    const closed = entry.get("closed_height");
    return isHash(entry.get("document_hash")) && isUint(entry.get("hourly_wage_krw"))
      && ROLES.includes(entry.get("proposed_by")) && isUint(entry.get("proposed_height"))
      && isHash(entry.get("proposed_tx")) && AMENDMENT_STATUSES.includes(entry.get("status"))
      && (closed === null) === (entry.get("status") === "proposed") && (closed === null || isUint(closed));
  },
  work: (entry) => isDate(entry.get("period_start")) && isDate(entry.get("period_end"))
    && ["minutes", "hourly_wage_krw", "wage_due_krw", "height"].every((name) => isUint(entry.get(name)))
    && isHash(entry.get("tx")),
  payment: (entry) => isDate(entry.get("period_start")) && isDate(entry.get("period_end"))
    && isUint(entry.get("amount_krw")) && isUint(entry.get("height")) && isHash(entry.get("tx")),
};

async function checkEntries(record, list, items, number) {
  const count = record.get(list.countField);
  if (BigInt(items.length) !== count) {
    throw new VerificationError(`contract ${number} counts ${count} ${list.kind} entries, the claim carries ${items.length}`);
  }
  const decoded = items.map((bytes, index) => {
    const entry = decodeCbor(bytes, STATE_VALUE_BYTES_MAX);
    if (!hasExactly(entry, ENTRY_FIELDS[list.kind]) || !ENTRY_CHECKS[list.kind](entry)) {
      throw new DecodeError(`${list.kind} entry ${index + 1} of contract ${number} is not a labor ${list.kind} entry`);
    }
    return entry;
  });
  if (!equalBytes(await chain(items), record.get(list.digestField))) {
    throw new VerificationError(`contract ${number}'s ${list.kind} entries do not chain to its ${list.digestField}: `
      + "an entry was changed, dropped, added or reordered");
  }
  return decoded;
}

async function checkContract(party, number, entry, proven, header) {
  await verifyStateProof(header.stateRoot, proven.key, proven.record, proven.proof);
  const record = decodeContract(proven.record, number);
  if (!(equalBytes(entry.get("contract_hash"), proven.contractHash) && equalBytes(proven.contractHash, record.get("contract_hash")))) {
    throw new VerificationError(`contract ${number} of the claim is not contract sha256:${toHex(entry.get("contract_hash"))} `
      + "of the party's list");
  }
  if (!equalBytes(record.get(entry.get("role")), party)) {
    throw new VerificationError(`contract ${number} (sha256:${toHex(record.get("contract_hash"))}) names another key as `
      + `its ${entry.get("role")}: it is not this party's contract`);
  }
  const entries = {};
  for (const list of ENTRY_LISTS) entries[list.kind] = await checkEntries(record, list, proven.lists[list.kind], number);
  return { role: entry.get("role"), record, entries };
}

function renderContract({ role, record, entries }, genesis) {
  const get = (name) => record.get(name);
  const until = get("end_date") === null ? "" : ` to ${get("end_date")}`;
  const signed = get("signed_height") === null ? ""
    : `, signed by the worker at height ${get("signed_height")} (transaction sha256:${toHex(get("signed_tx"))})`;
  const lines = [`contract sha256:${toHex(get("contract_hash"))} as ${role} (employer ${renderPublicKey(get("employer"), genesis)}, `
    + `worker ${renderPublicKey(get("worker"), genesis)}): ${get("status").replaceAll("_", " ")}, from ${get("start_date")}${until}, `
    + `${get("hourly_wage_krw")} KRW an hour (document sha256:${toHex(get("document_hash"))}), proposed at height `
    + `${get("proposed_height")} (transaction sha256:${toHex(get("proposed_tx"))})${signed}; ${get("work_records")} work periods, `
    + `${get("minutes_worked")} minutes, ${get("wages_due_krw")} KRW due, ${get("wages_paid_krw")} KRW paid`];
  entries.amendment.forEach((item, index) => {
    const status = { proposed: "pending", in_force: `in force from height ${item.get("closed_height")}`,
      withdrawn: `withdrawn at height ${item.get("closed_height")}` }[item.get("status")];
    lines.push(`  amendment #${index + 1} by the ${item.get("proposed_by")} at height ${item.get("proposed_height")}: `
      + `${item.get("hourly_wage_krw")} KRW an hour (document sha256:${toHex(item.get("document_hash"))}), ${status}`);
  });
  entries.work.forEach((item, index) => lines.push(`  work #${index + 1} ${item.get("period_start")} to ${item.get("period_end")}: `
    + `${item.get("minutes")} minutes at ${item.get("hourly_wage_krw")} KRW an hour, ${item.get("wage_due_krw")} KRW due `
    + `(height ${item.get("height")})`));
  entries.payment.forEach((item, index) => lines.push(`  payment #${index + 1}: ${item.get("amount_krw")} KRW for `
    + `${item.get("period_start")} to ${item.get("period_end")} (height ${item.get("height")})`));
  return lines;
}

export async function verifyLaborClaim(claim, header, genesis) {
  await verifyStateProof(header.stateRoot, claim.key, claim.record, claim.proof);
  const party = renderPublicKey(claim.party, genesis);
  const asOf = `as of height ${header.height} (time ${formatTime(header.timeMs)})`;
  const facts = { party: toHex(claim.party), asOfHeight: header.height, asOfTimeMs: header.timeMs };
  if (claim.record === null) {
    if (claim.entries.length > 0 || claim.contracts.length > 0) {
      throw new VerificationError(`the party has no labor record, yet the claim carries ${claim.entries.length} contracts`);
    }
    return { kind: "labor", text: `${party} was party to no labor contract ${asOf}`, height: header.height,
      facts: { ...facts, contracts: 0 } };
  }
  const listed = await checkParty(claim);
  const contracts = [];
  for (const [index, entry] of listed.entries()) {
    contracts.push(await checkContract(claim.party, index + 1, entry, claim.contracts[index], header));
  }
  const lines = [`labor history of ${party}, ${asOf}: ${contracts.length} contracts`];
  for (const contract of contracts) lines.push(...renderContract(contract, genesis));
  return { kind: "labor", text: lines.join("\n"), height: header.height, facts: { ...facts, contracts: contracts.length } };
}
