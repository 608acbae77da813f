// The claims of a bundle (docs/spec/proofs.md §6, §7.1–§7.6), each checked against the
// proving header and read into a statement: `{kind, text, height, facts}`.

import { DecodeError, decodeCbor } from "./cbor.js";
import { concatBytes, equalBytes, fromBase64, fromHex, sha256, toHex, utf8 } from "./bytes.js";
import {
  BLOCK_BYTES_MAX, TX_BYTES_MAX, VerificationError, decodeHeader, decodeTransaction, getAgencyName,
  isBytes, isUint,
} from "./ledger.js";
import { STATE_PROOF_BYTES_MAX, computeLeafHash, verifyInclusion, verifyStateProof } from "./merkle.js";
import { isValidSignature } from "./ed25519.js";
import { readLaborClaim, verifyLaborClaim } from "./labor.js";
import { describeKey, formatTime, quoteText, renderOutcome, renderPublicKey } from "./statement.js";

// logtree.md §9: INCLUSION_PROOF_HASHES_MAX.
const PROOF_HASHES_MAX = 64;
// A state value is a service record; the block size bounds it (bundle.py).
const STATE_VALUE_BYTES_MAX = BLOCK_BYTES_MAX;
const UINT64_MAX = 2n ** 64n - 1n;
// proofs.md §6.4, the vehicle service's HISTORY_ENTRIES_MAX.
const VEHICLE_ENTRIES_MAX = 4096;
const VIN_PATTERN = /^[0-9A-HJ-NPR-Z]{17}$/;
const DOCUMENT_RECORD_FIELDS = ["issuer", "kind", "metadata", "height", "time_ms", "tx", "supersedes",
  "superseded_by", "superseded_height", "superseded_reason"];
const ISSUED_DOCUMENT_FIELDS = ["valid_from_ms", "valid_until_ms", "revoked_height", "revoked_time_ms",
  "revoked_reason"];
const VEHICLE_RECORD_FIELDS = ["vin", "model", "owner", "registrar", "registered_height", "status",
  "odometer_km", "meter_replacements", "offer", "listing", "entries", "history_digest"];
const HISTORY_DIGEST_START = new Uint8Array(32);

export function requireObject(value, name, keys) {
  if (!(value instanceof Map)) throw new DecodeError(`${name} must be a JSON object`);
  const missing = keys.filter((key) => !value.has(key));
  const extra = [...value.keys()].filter((key) => !keys.includes(key));
  if (missing.length > 0 || extra.length > 0) {
    throw new DecodeError(`${name} fields are wrong (missing ${JSON.stringify(missing)}, unknown ${JSON.stringify(extra)})`);
  }
  return value;
}

export function requireInt(value, name, minimum = 0n) {
  if (typeof value !== "bigint" || value < minimum || value > UINT64_MAX) {
    throw new DecodeError(`${name} must be an integer from ${minimum} to 2^64 - 1`);
  }
  return value;
}

export function requireList(value, name, itemsMax) {
  if (!Array.isArray(value) || value.length > itemsMax) {
    throw new DecodeError(`${name} must be a list of at most ${itemsMax} items`);
  }
  return value;
}

function decodeHashes(value, name) {
  return requireList(value, name, PROOF_HASHES_MAX).map((item) => fromHex(item, `${name} hash`, 32));
}

function optionalBase64(value, name) {
  return value === null ? null : fromBase64(value, name, STATE_VALUE_BYTES_MAX);
}

async function checkKeyHash(value, key) {
  if (!equalBytes(fromHex(value, "key_hash", 32), await sha256(key))) {
    throw new VerificationError("key_hash is not SHA-256 of the claim's state key");
  }
}

function asOf(header) {
  return `as of height ${header.height} (time ${formatTime(header.timeMs)})`;
}

export async function verifyClaim(claim, header, genesis) {
  const kind = claim instanceof Map ? claim.get("kind") : undefined;
  if (kind === "tx") return verifyTxClaim(claim, header, genesis);
  if (kind === "state") return verifyStateClaim(claim, header);
  if (kind === "document") return verifyDocumentClaim(claim, header, genesis);
  if (kind === "vehicle") return verifyVehicleClaim(claim, header, genesis);
  if (kind === "labor") {
    const labor = readLaborClaim(claim);
    await checkKeyHash(labor.keyHash, labor.key);
    return verifyLaborClaim(labor, header, genesis);
  }
  throw new DecodeError(`proof kind ${JSON.stringify(kind ?? null)} is not one of tx, state, document, vehicle, labor`);
}

// ---------------------------------------------------------------------------------- tx

async function verifyTxClaim(claim, header, genesis) {
  requireObject(claim, "tx proof", ["kind", "tx", "log_index", "log_proof", "prev_header", "result", "result_proof"]);
  const txBytes = fromBase64(claim.get("tx"), "tx", TX_BYTES_MAX);
  const logIndex = requireInt(claim.get("log_index"), "log_index");
  const logProof = decodeHashes(claim.get("log_proof"), "log_proof");
  const prevRaw = claim.get("prev_header");
  const prev = prevRaw === null ? null : decodeHeader(fromBase64(prevRaw, "prev_header", TX_BYTES_MAX));
  const result = fromBase64(claim.get("result"), "result", TX_BYTES_MAX);
  const resultProof = decodeHashes(claim.get("result_proof"), "result_proof");
  const tx = decodeTransaction(txBytes);
  if (!(await isValidSignature(tx.signer, tx.signBytes, tx.signature))) {
    throw new VerificationError("the transaction's signature does not verify");
  }
  if (tx.chainId !== header.chainId) throw new VerificationError(`the transaction is for chain ${JSON.stringify(tx.chainId)}`);
  await verifyInclusion(await computeLeafHash(txBytes), logIndex, header.logSize, logProof, header.logRoot);
  const blockStart = await checkPreviousHeader(prev, header);
  if (logIndex < blockStart) {
    throw new VerificationError(`log index ${logIndex} was already in the log at height ${header.height - 1n} `
      + `(size ${blockStart})`);
  }
  const position = logIndex - blockStart;
  await verifyInclusion(await computeLeafHash(result), position, header.logSize - blockStart, resultProof,
    header.resultsRoot);
  const [code, log] = decodeResult(result);
  const txHash = toHex(await sha256(txBytes));
  const text = `transaction sha256:${txHash} (${tx.service}.${tx.method}, signed by `
    + `${renderPublicKey(tx.signer, genesis)}, nonce ${tx.nonce}) was committed at height ${header.height}, `
    + `time ${formatTime(header.timeMs)}, as transaction ${position} of its block (log index ${logIndex}); `
    + `result: ${renderOutcome(code, log)}`;
  return { kind: "tx", text, height: header.height, facts: { txHash, service: tx.service, method: tx.method,
    signer: toHex(tx.signer), signerName: getAgencyName(genesis, tx.signer), code, log, timeMs: header.timeMs } };
}

async function checkPreviousHeader(prev, header) {
  if (header.height === 1n) {
    if (prev !== null) throw new VerificationError("a transaction of block 1 has no previous header");
    return 0n;
  }
  if (prev === null) throw new VerificationError(`the header of height ${header.height - 1n} is missing`);
  if (!equalBytes(await sha256(prev.bytes), header.prevBlockId) || prev.height !== header.height - 1n) {
    throw new VerificationError(`the previous header does not link to header ${header.height}`);
  }
  if (prev.logSize > header.logSize) throw new VerificationError("the log shrank between the previous header and this one");
  return prev.logSize;
}

function decodeResult(bytes) {
  const value = decodeCbor(bytes, TX_BYTES_MAX);
  if (!(Array.isArray(value) && value.length === 3 && isUint(value[0]) && typeof value[1] === "string"
    && Array.isArray(value[2]))) {
    throw new DecodeError("a result is [code, log, events]");
  }
  return [value[0], value[1]];
}

// ------------------------------------------------------------------------------- state

async function verifyStateClaim(claim, header) {
  requireObject(claim, "state proof", ["kind", "key", "key_hash", "value", "proof"]);
  const key = fromHex(claim.get("key"), "state key");
  await checkKeyHash(claim.get("key_hash"), key);
  const value = optionalBase64(claim.get("value"), "state value");
  await verifyStateProof(header.stateRoot, key, value, fromBase64(claim.get("proof"), "state tree proof", STATE_PROOF_BYTES_MAX));
  const when = `height ${header.height} (time ${formatTime(header.timeMs)})`;
  const valueHash = value === null ? null : toHex(await sha256(value));
  const text = value === null ? `state key ${describeKey(key)} was absent at ${when}`
    : `state key ${describeKey(key)} held a value of ${value.length} bytes, sha256:${valueHash}, at ${when}`;
  return { kind: "state", text, height: header.height, facts: { key: toHex(key), value: value === null ? null : toHex(value), valueHash,
    timeMs: header.timeMs } };
}

// ---------------------------------------------------------------------------- document

async function readDocumentClaim(claim, header) {
  const named = claim.has("service");
  requireObject(claim, "document proof", ["kind", "doc_hash", "key_hash", "record", "proof", ...(named ? ["service"] : [])]);
  if (named && claim.get("service") !== "document") {
    throw new DecodeError(`document service ${JSON.stringify(claim.get("service"))} is not one of ["document"] `
      + "(the notary has no `service`)");
  }
  const service = named ? "document" : "notary";
  const docHash = fromHex(claim.get("doc_hash"), "doc_hash", 32);
  const key = concatBytes(utf8(`${service}/doc/`), docHash);
  await checkKeyHash(claim.get("key_hash"), key);
  const record = optionalBase64(claim.get("record"), "document record");
  const proof = fromBase64(claim.get("proof"), "state tree proof", STATE_PROOF_BYTES_MAX);
  await verifyStateProof(header.stateRoot, key, record, proof);
  return { service, docHash: toHex(docHash), record };
}

function decodeDocumentRecord(bytes, extraFields = []) {
  const record = decodeCbor(bytes, STATE_VALUE_BYTES_MAX);
  const expected = [...DOCUMENT_RECORD_FIELDS, ...extraFields];
  if (!(record instanceof Map) || record.size !== expected.length || !expected.every((name) => record.has(name))) {
    throw new DecodeError(`the state value is not a ${extraFields.length ? "issued" : "notary"} document record`);
  }
  const get = (name) => record.get(name);
  const superseded = get("superseded_by") !== null;
  const checks = {
    issuer: isBytes(get("issuer"), 32),
    kind: typeof get("kind") === "string",
    height: isUint(get("height")) && get("height") >= 1n,
    time_ms: isUint(get("time_ms")),
    tx: isBytes(get("tx"), 32),
    supersedes: get("supersedes") === null || isBytes(get("supersedes"), 32),
    superseded_by: !superseded || isBytes(get("superseded_by"), 32),
    superseded_height: superseded ? isUint(get("superseded_height")) && get("superseded_height") >= 1n
      : get("superseded_height") === null,
    superseded_reason: superseded ? typeof get("superseded_reason") === "string" : get("superseded_reason") === null,
    metadata: get("metadata") instanceof Map && [...get("metadata").values()].every((value) => typeof value === "string"),
  };
  for (const [name, ok] of Object.entries(checks)) {
    if (!ok) throw new DecodeError(`the document record's ${name} is malformed`);
  }
  return record;
}

async function verifyDocumentClaim(claim, header, genesis) {
  const { service, docHash, record } = await readDocumentClaim(claim, header);
  if (service === "document") return readIssuedDocument(docHash, record, header, genesis);
  const name = `document sha256:${docHash}`;
  const facts = { service, docHash, asOfHeight: header.height, asOfTimeMs: header.timeMs, anchored: record !== null };
  if (record === null) {
    return { kind: "document", text: `${name} was not anchored ${asOf(header)}`, height: header.height, facts };
  }
  const fields = decodeDocumentRecord(record);
  const get = (field) => fields.get(field);
  let text = `${name} was anchored by ${renderPublicKey(get("issuer"), genesis)} at height ${get("height")}, `
    + `time ${formatTime(get("time_ms"))} (kind ${quoteText(get("kind"))}, transaction sha256:${toHex(get("tx"))})`;
  if (get("supersedes") !== null) text += ` as a correction of sha256:${toHex(get("supersedes"))}`;
  text += get("superseded_by") === null ? `; not superseded ${asOf(header)}`
    : `; superseded by sha256:${toHex(get("superseded_by"))} at height ${get("superseded_height")} `
      + `(reason: ${quoteText(get("superseded_reason"))}), ${asOf(header)}`;
  Object.assign(facts, describeRecord(fields, genesis), { status: get("superseded_by") === null ? "anchored" : "superseded" });
  return { kind: "document", text, height: header.height, facts };
}

function describeRecord(fields, genesis) {
  const hex = (value) => (value instanceof Uint8Array ? toHex(value) : value);
  return { issuer: toHex(fields.get("issuer")), issuerName: getAgencyName(genesis, fields.get("issuer")),
    documentKind: fields.get("kind"), issuedHeight: fields.get("height"), issuedTimeMs: fields.get("time_ms"),
    supersededBy: hex(fields.get("superseded_by")), metadata: Object.fromEntries(fields.get("metadata")) };
}

function decodeIssuedRecord(bytes) {
  const record = decodeDocumentRecord(bytes, ISSUED_DOCUMENT_FIELDS);
  const get = (name) => record.get(name);
  const revoked = get("revoked_height") !== null;
  const checks = {
    valid_from_ms: isUint(get("valid_from_ms")),
    valid_until_ms: get("valid_until_ms") === null || isUint(get("valid_until_ms")),
    revoked_height: !revoked || (isUint(get("revoked_height")) && get("revoked_height") >= 1n),
    revoked_time_ms: revoked ? isUint(get("revoked_time_ms")) : get("revoked_time_ms") === null,
    revoked_reason: revoked ? typeof get("revoked_reason") === "string" : get("revoked_reason") === null,
  };
  for (const [name, ok] of Object.entries(checks)) {
    if (!ok) {
      throw new DecodeError(`the document record's ${name} is malformed`);
    }
  }
  return record;
}

export function computeDocumentStatus(record, atMs) {
  if (record === null) return "unknown";
  if (record.get("revoked_height") !== null) return "revoked";
  if (record.get("superseded_by") !== null) return "superseded";
  if (atMs < record.get("valid_from_ms")) return "not_yet_valid";
  if (record.get("valid_until_ms") !== null && atMs >= record.get("valid_until_ms")) return "expired";
  return "valid";
}

function readIssuedDocument(docHash, recordBytes, header, genesis) {
  const record = recordBytes === null ? null : decodeIssuedRecord(recordBytes);
  const status = computeDocumentStatus(record, header.timeMs);
  const facts = { service: "document", docHash, status, asOfHeight: header.height, asOfTimeMs: header.timeMs,
    anchored: record !== null };
  if (record !== null) {
    Object.assign(facts, describeRecord(record, genesis), { validFromMs: record.get("valid_from_ms"),
      validUntilMs: record.get("valid_until_ms"), revokedHeight: record.get("revoked_height"),
      revokedTimeMs: record.get("revoked_time_ms"), revokedReason: record.get("revoked_reason"),
      supersededReason: record.get("superseded_reason") });
  }
  return { kind: "document", text: renderIssuedStatus(docHash, record, status, header, genesis), height: header.height, facts };
}

function renderIssuedStatus(docHash, record, status, header, genesis) {
  const name = `document sha256:${docHash}`;
  if (status === "unknown") return `UNKNOWN: ${name} was never issued on this chain, ${asOf(header)}`;
  const get = (field) => record.get(field);
  const issued = `${name} (kind ${quoteText(get("kind"))}) was issued by ${renderPublicKey(get("issuer"), genesis)} `
    + `at height ${get("height")}, time ${formatTime(get("time_ms"))}`;
  const until = get("valid_until_ms") === null ? "with no end" : `until ${formatTime(get("valid_until_ms"))}`;
  const reasons = {
    valid: () => `VALID: ${issued}; valid ${until}`,
    revoked: () => `REVOKED: ${issued}; revoked at height ${get("revoked_height")}, time `
      + `${formatTime(get("revoked_time_ms"))} (reason: ${quoteText(get("revoked_reason"))})`,
    superseded: () => `SUPERSEDED: ${issued}; corrected by sha256:${toHex(get("superseded_by"))} at height `
      + `${get("superseded_height")} (reason: ${quoteText(get("superseded_reason"))})`,
    expired: () => `EXPIRED: ${issued}; its validity ended ${formatTime(get("valid_until_ms"))}`,
    not_yet_valid: () => `NOT YET VALID: ${issued}; valid from ${formatTime(get("valid_from_ms"))} ${until}`,
  };
  return `${reasons[status]()}, ${asOf(header)}`;
}

// ----------------------------------------------------------------------------- vehicle

async function verifyVehicleClaim(claim, header, genesis) {
  requireObject(claim, "vehicle proof", ["kind", "vin", "key_hash", "record", "proof", "entries"]);
  const vin = claim.get("vin");
  if (!(typeof vin === "string" && VIN_PATTERN.test(vin))) {
    throw new DecodeError(`vin ${JSON.stringify(vin)} is not 17 characters from 0-9 and upper-case A-Z without I, O and Q`);
  }
  const key = utf8(`vehicle/vin/${vin}`);
  await checkKeyHash(claim.get("key_hash"), key);
  const recordBytes = optionalBase64(claim.get("record"), "vehicle record");
  const entries = requireList(claim.get("entries"), "entries", VEHICLE_ENTRIES_MAX)
    .map((entry, index) => fromBase64(entry, `history entry ${index + 1}`, STATE_VALUE_BYTES_MAX));
  await verifyStateProof(header.stateRoot, key, recordBytes, fromBase64(claim.get("proof"), "state tree proof", STATE_PROOF_BYTES_MAX));
  const facts = { vin, asOfHeight: header.height, asOfTimeMs: header.timeMs, registered: recordBytes !== null };
  if (recordBytes === null) {
    if (entries.length > 0) {
      throw new VerificationError(`vehicle ${vin} is not registered, yet the claim carries ${entries.length} history entries`);
    }
    return { kind: "vehicle", text: `vehicle ${vin} was not registered ${asOf(header)}`, height: header.height, facts };
  }
  const record = decodeVehicleRecord(recordBytes, vin);
  const decoded = await checkVehicleHistory(record, entries);
  const lines = [`vehicle ${vin} (model ${quoteText(record.get("model"))}), ${asOf(header)}: ${record.get("status")}, `
    + `owner ${renderPublicKey(record.get("owner"), genesis)}, last odometer reading ${record.get("odometer_km")} km, `
    + `${decoded.length} history entries:`];
  for (const entry of decoded) lines.push(renderVehicleEntry(entry, genesis));
  Object.assign(facts, { status: record.get("status"), model: record.get("model"), owner: toHex(record.get("owner")),
    odometerKm: record.get("odometer_km"), entries: decoded.length });
  return { kind: "vehicle", text: lines.join("\n"), height: header.height, facts };
}

function decodeVehicleRecord(bytes, vin) {
  const record = decodeCbor(bytes, STATE_VALUE_BYTES_MAX);
  if (!(record instanceof Map) || record.size !== VEHICLE_RECORD_FIELDS.length
    || !VEHICLE_RECORD_FIELDS.every((name) => record.has(name))) {
    throw new DecodeError("the state value is not a vehicle record");
  }
  const get = (name) => record.get(name);
  const checks = {
    vin: get("vin") === vin,
    model: typeof get("model") === "string",
    owner: isBytes(get("owner"), 32),
    registrar: isBytes(get("registrar"), 32),
    registered_height: isUint(get("registered_height")),
    meter_replacements: isUint(get("meter_replacements")),
    offer: get("offer") === null || get("offer") instanceof Map,
    listing: get("listing") === null || get("listing") instanceof Map,
    status: get("status") === "active" || get("status") === "scrapped",
    odometer_km: isUint(get("odometer_km")),
    entries: isUint(get("entries")) && get("entries") <= BigInt(VEHICLE_ENTRIES_MAX),
    history_digest: isBytes(get("history_digest"), 32),
  };
  for (const [name, ok] of Object.entries(checks)) {
    if (!ok) throw new DecodeError(`the vehicle record's ${name} is malformed`);
  }
  return record;
}

async function checkVehicleHistory(record, entries) {
  if (BigInt(entries.length) !== record.get("entries")) {
    throw new VerificationError(`the record counts ${record.get("entries")} history entries, the claim carries ${entries.length}`);
  }
  const decoded = [];
  let digest = HISTORY_DIGEST_START;
  for (const [index, bytes] of entries.entries()) {
    const entry = decodeCbor(bytes, STATE_VALUE_BYTES_MAX);
    const seq = BigInt(index + 1);
    if (!(entry instanceof Map && entry.get("seq") === seq && typeof entry.get("kind") === "string"
      && isUint(entry.get("height")) && isUint(entry.get("time_ms")) && entry.get("signer") instanceof Uint8Array)) {
      throw new DecodeError(`history entry ${seq} is not a vehicle history entry numbered ${seq}`);
    }
    // The strict decoder accepted only canonical bytes, so these are CBOR(entry).
    digest = await sha256(concatBytes(digest, bytes));
    decoded.push(entry);
  }
  if (!equalBytes(digest, record.get("history_digest"))) {
    throw new VerificationError("the history entries do not chain to the record's history_digest: an entry "
      + "was changed, dropped or reordered");
  }
  return decoded;
}

function entryField(entry, name, type, optional = false) {
  const value = entry.has(name) ? entry.get(name) : null;
  if (value === null && optional) return value;
  const ok = type === "bytes" ? value instanceof Uint8Array : type === "int" ? isUint(value) : typeof value === "string";
  if (ok) return value;
  throw new DecodeError(`history entry ${entry.get("seq")} (${entry.get("kind")}) has no valid ${name}`);
}

function renderVehicleEntry(entry, genesis) {
  const key = (name) => renderPublicKey(entryField(entry, name, "bytes"), genesis);
  const km = (name = "odometer_km") => {
    const value = entryField(entry, name, "int", true);
    return value === null ? "" : ` at ${value} km`;
  };
  const krw = () => {
    const value = entryField(entry, "price_krw", "int", true);
    return value === null ? "" : ` for ${value} KRW`;
  };
  const note = () => {
    const value = entryField(entry, "note", "text");
    return value ? ` (note: ${quoteText(value)})` : "";
  };
  const texts = {
    registered: () => `registered to owner ${key("owner")}${km()}`,
    inspection: () => `inspection ${quoteText(entryField(entry, "result", "text"))}${km()}${note()}`,
    meter_replaced: () => `odometer replaced: old meter read ${entryField(entry, "old_meter_km", "int")} km, new meter `
      + `${entryField(entry, "new_meter_km", "int")} km${note()}`,
    accident: () => `accident: ${quoteText(entryField(entry, "description", "text"))}${km()}`,
    repair: () => `repair: ${quoteText(entryField(entry, "description", "text"))}${km()}`,
    listed: () => `listed for sale${krw()}${km()}`,
    transfer_offered: () => `transfer offered by ${key("seller")} to ${key("buyer")}${krw()}`,
    offer_cancelled: () => `offer to ${key("buyer")} cancelled`,
    transferred: () => `sold by ${key("seller")} to ${key("buyer")}${krw()}`,
    scrapped: () => `scrapped (last owner ${key("owner")})`,
  };
  const kind = entry.get("kind");
  const what = Object.hasOwn(texts, kind) ? texts[kind]() : `entry of kind ${quoteText(kind)}`;
  return `  #${entry.get("seq")} ${formatTime(entry.get("time_ms"))} (height ${entry.get("height")}): ${what}; `
    + `signed by ${renderPublicKey(entry.get("signer"), genesis)}`;
}
