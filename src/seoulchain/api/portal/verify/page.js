// The verify page (../verify.html): a document file, a proof bundle or a credential,
// checked in the browser against the genesis the page trusts.
//
// Theory of operation. The page pins a genesis: the node's at first use (its hash is shown,
// and kept in this browser), or a genesis file the person loads. Every answer the node
// gives afterwards is only material: a bundle is verified here by ./bundle.js (WebCrypto
// signatures and hashes, from the pinned genesis), and bound to the question asked (the
// file's own SHA-256, the credential's state key), so a lying node makes the check fail.
// A credential's Data Integrity proof is checked here too (./integrity.js: RDFC-1.0 by the
// vendored jsonld, with only the contexts seoulchain ships, served by the node and checked
// against their SHA-256 manifest), under the key its issuer's DID document held at the
// issuance height, proven from the chain (./didkey.js), and the anchoring key's role
// `vc.issuer.<type>` at that height is proven from its role history (./role.js). Only what
// the page cannot check itself (the issuer's registration) is asked of the node, and the
// page says so.

import { badge, h, replace } from "../dom.js";
import { formatNumber, formatTime, initI18n, onLanguageChange, t } from "../i18n.js";
import { BundleError, loadGenesis, verifyBundle } from "./bundle.js";
import { concatBytes, sha256, toHex, utf8 } from "./bytes.js";
import { decodeCbor } from "./cbor.js";
import { proveAssertionKey } from "./didkey.js";
import {
  ProofError, checkCredentialType, createDocumentLoader, loadShippedContexts, verifyProof,
} from "./integrity.js";
import { canonicalJson } from "./json.js";
import { AUTH_NAMESPACE, proveIssuerRole } from "./role.js";

const STORAGE_KEY = "seoulchain.verify.genesis";
// A verified credential anchor key: "vc/" namespace, then "anchor/" and the 32-byte hash.
const ANCHOR_PREFIX = "anchor/";
// vc service: set bits are stored per chunk of this many indices (services/vc.py).
const STATUS_CHUNK_ENTRIES = 1024;
const STATUS_LIST_URL_PREFIX = "urn:seoulchain:vc:status-list:";
// A credential pasted here is a few KiB; the anchor is over its canonical JSON.
const CREDENTIAL_CHARS_MAX = 64 * 1024;
// The node's copy of the JSON-LD contexts seoulchain ships (credentials/contexts/).
const CONTEXTS_PATH = "contexts/";
const TONES = { valid: "ok", anchored: "ok", present: "ok", committed: "ok", registered: "ok", absent: "wait",
  unknown: "bad", revoked: "bad", superseded: "wait", expired: "bad", not_yet_valid: "wait", failed: "bad",
  suspended: "wait" };

let trusted = null;
let shippedContexts = null;
const renderers = {};

function show(panel, render) {
  renderers[panel] = render;
  replace(document.getElementById(`${panel}-result`), render());
}

function verdict(outcome, text) {
  return h("p", { class: "verdict", "data-outcome": outcome }, badge(t(`verify.outcome.${outcome}`), TONES[outcome]), text);
}

function when(ms) {
  return formatTime(Number(ms));
}

function who(name, keyHex) {
  return name ?? `ed25519 ${keyHex.slice(0, 16)}…`;
}

// --------------------------------------------------------------------------- trust anchor

function readSaved() {
  try {
    return JSON.parse(localStorage.getItem(STORAGE_KEY) ?? "null");
  } catch {
    return null;
  }
}

function save(pin) {
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify(pin));
  } catch {
    // Storage refused: the pin lasts for this page only.
  }
}

async function fetchText(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  const text = await response.text();
  if (!response.ok) {
    let detail = `${response.status}`;
    try {
      detail = JSON.parse(text).detail ?? detail;
    } catch {
      // Not a problem document: keep the status.
    }
    throw new Error(detail);
  }
  return text;
}

async function pin(text, source) {
  const genesis = await loadGenesis(text);
  trusted = { genesis, text, source, pinnedAtMs: Date.now() };
  save({ text, source, pinnedAtMs: trusted.pinnedAtMs });
  renderTrust();
}

async function loadTrust() {
  const saved = readSaved();
  if (saved && typeof saved.text === "string") {
    try {
      trusted = { ...saved, genesis: await loadGenesis(saved.text) };
    } catch {
      trusted = null;
    }
  }
  if (trusted === null) await pin(await fetchText("/v1/genesis"), "node");
  renderTrust();
  await compareWithNode();
}

async function compareWithNode() {
  const warning = document.getElementById("trust-warning");
  try {
    const served = await loadGenesis(await fetchText("/v1/genesis"));
    const same = toHex(served.hash) === toHex(trusted.genesis.hash);
    warning.hidden = same;
    warning.dataset.key = "verify.trust.mismatch";
    warning.dataset.values = JSON.stringify({ hash: toHex(served.hash) });
  } catch {
    warning.hidden = true;
  }
  renderTrust();
}

function renderTrust() {
  if (trusted === null) return;
  document.getElementById("trust-chain").textContent = trusted.genesis.chainId;
  document.getElementById("trust-hash").textContent = toHex(trusted.genesis.hash);
  document.getElementById("trust-source").textContent = t(`verify.trust.from_${trusted.source}`,
    { time: when(trusted.pinnedAtMs) });
  const warning = document.getElementById("trust-warning");
  if (warning.dataset.key) warning.textContent = t(warning.dataset.key, JSON.parse(warning.dataset.values));
}

// ----------------------------------------------------------------------------- results

function failure(error) {
  if (error instanceof ProofError && error.step === "role") {
    return [verdict("failed", t("verify.failed_role")), h("p", {}, t("verify.failed_role_explain")),
      h("pre", { class: "reason" }, error.message)];
  }
  if (error instanceof ProofError) {
    return [verdict("failed", t("verify.failed_credential", { step: error.step })),
      h("p", {}, t("verify.failed_credential_explain")), h("pre", { class: "reason" }, error.message)];
  }
  if (error instanceof BundleError) {
    return [verdict("failed", t("verify.failed", { step: error.step })),
      h("p", {}, t("verify.failed_explain")), h("pre", { class: "reason" }, error.message)];
  }
  return [verdict("failed", t("verify.error")), h("pre", { class: "reason" }, String(error.message ?? error))];
}

function checkedList(items) {
  return h("ul", { class: "checks" }, items.map(([where, key, values]) =>
    h("li", { "data-checked": where }, badge(t(`verify.where.${where}`), where === "browser" ? "ok" : "wait"), " ",
      t(key, values))));
}

function provenChecks(statement) {
  return [["browser", "verify.check.genesis", { hash: statement.genesisHash.slice(0, 16) }],
    ["browser", statement.trust === "checkpoint" ? "verify.check.signatures_checkpoint" : "verify.check.signatures",
      { blocks: statement.lightBlocks, height: statement.height }],
    ["browser", `verify.check.claim_${statement.kind}`, {}]];
}

function statementBlock(statement) {
  return h("details", {}, h("summary", {}, t("verify.statement")), h("pre", { class: "statement" }, statement.text));
}

function describeIssued(statement) {
  const facts = statement.facts;
  const asOf = { height: formatNumber(Number(statement.height)), time: when(facts.asOfTimeMs) };
  if (!facts.anchored) return [h("p", {}, t("verify.plain.unknown", asOf))];
  const values = { issuer: who(facts.issuerName, facts.issuer), kind: facts.documentKind,
    time: when(facts.issuedTimeMs), height: formatNumber(Number(facts.issuedHeight)), ...asOf };
  const lines = [h("p", {}, t("verify.plain.issued", values))];
  if (facts.status === "revoked") lines.push(h("p", {}, t("verify.plain.revoked", { time: when(facts.revokedTimeMs), reason: facts.revokedReason })));
  if (facts.status === "superseded") lines.push(h("p", {}, t("verify.plain.superseded", { hash: facts.supersededBy, reason: facts.supersededReason })));
  if (facts.validUntilMs !== null) lines.push(h("p", {}, t("verify.plain.until", { time: when(facts.validUntilMs) })));
  lines.push(h("p", { class: "muted" }, t("verify.plain.as_of", asOf)));
  return lines;
}

function describeNotary(statement) {
  const facts = statement.facts;
  const asOf = { height: formatNumber(Number(statement.height)), time: when(facts.asOfTimeMs) };
  if (!facts.anchored) return [h("p", {}, t("verify.plain.not_anchored", asOf))];
  const lines = [h("p", {}, t("verify.plain.anchored", { issuer: who(facts.issuerName, facts.issuer),
    kind: facts.documentKind, time: when(facts.issuedTimeMs), height: formatNumber(Number(facts.issuedHeight)) }))];
  if (facts.supersededBy) lines.push(h("p", {}, t("verify.plain.superseded", { hash: facts.supersededBy, reason: "" })));
  lines.push(h("p", { class: "muted" }, t("verify.plain.as_of", asOf)));
  return lines;
}

function describe(statement) {
  const facts = statement.facts;
  const height = formatNumber(Number(statement.height));
  if (statement.kind === "document") {
    return facts.service === "document"
      ? { outcome: facts.status, lines: describeIssued(statement) }
      : { outcome: facts.anchored ? (facts.supersededBy ? "superseded" : "anchored") : "unknown", lines: describeNotary(statement) };
  }
  if (statement.kind === "vehicle") {
    const values = { vin: facts.vin, n: facts.entries ?? 0, km: formatNumber(Number(facts.odometerKm ?? 0)), height,
      status: facts.status ?? "" };
    return { outcome: facts.registered ? "registered" : "unknown",
      lines: [h("p", {}, t(facts.registered ? "verify.plain.vehicle" : "verify.plain.vehicle_absent", values))] };
  }
  if (statement.kind === "labor") {
    return { outcome: facts.contracts > 0 ? "present" : "absent", lines: [h("p", {},
      t(facts.contracts > 0 ? "verify.plain.labor" : "verify.plain.labor_absent", { n: facts.contracts, height }))] };
  }
  if (statement.kind === "tx") {
    return { outcome: "committed", lines: [h("p", {}, t("verify.plain.tx", { hash: facts.txHash.slice(0, 16),
      action: `${facts.service}.${facts.method}`, signer: who(facts.signerName, facts.signer), height,
      time: when(facts.timeMs), code: facts.code === 0n ? "OK" : String(facts.code) }))] };
  }
  return { outcome: facts.valueHash ? "present" : "absent",
    lines: [h("p", {}, t(facts.valueHash ? "verify.plain.state" : "verify.plain.state_absent", { height }))] };
}

function renderStatement(statement, extraChecks = []) {
  const { outcome, lines } = describe(statement);
  return [verdict(outcome, t(`verify.headline.${outcome}`)), ...lines,
    checkedList([...provenChecks(statement), ...extraChecks]), statementBlock(statement)];
}

// --------------------------------------------------------------------------- a file

async function fetchBundle(path) {
  const response = await fetch(path);
  if (!response.ok) throw new Error(await fetchText(path).catch((error) => error.message));
  return new Uint8Array(await response.arrayBuffer());
}

async function checkFile(file) {
  show("file", () => h("p", { class: "notice" }, t("verify.working")));
  try {
    const digest = toHex(await sha256(new Uint8Array(await file.arrayBuffer())));
    let statement = await verifyBundle(await fetchBundle(`/v1/bundles/document/${digest}?service=document`), trusted.genesis);
    requireDocument(statement, digest, "document");
    if (!statement.facts.anchored) {
      const notary = await verifyBundle(await fetchBundle(`/v1/bundles/document/${digest}?service=notary`), trusted.genesis);
      requireDocument(notary, digest, "notary");
      if (notary.facts.anchored) statement = notary;
    }
    const hashCheck = ["browser", "verify.check.file_hash", { name: file.name, hash: digest.slice(0, 16) }];
    show("file", () => [h("p", { class: "muted" }, t("verify.file.hash", { name: file.name, hash: digest })),
      ...renderStatement(statement, [hashCheck])]);
  } catch (error) {
    show("file", () => failure(error));
  }
}

function requireDocument(statement, digest, service) {
  // A node could answer with a valid bundle about another document: bind it to this file.
  if (statement.kind !== "document" || statement.facts.docHash !== digest || statement.facts.service !== service) {
    throw new BundleError("answer", t("verify.other_question"));
  }
}

// -------------------------------------------------------------------------- a bundle

function parseCheckpoint(text) {
  if (!text.trim()) return null;
  const match = /^\s*(\d+):([0-9a-f]{64})\s*$/.exec(text);
  if (match === null) throw new BundleError("trust", t("verify.bundle.bad_checkpoint"));
  return { height: BigInt(match[1]), blockId: match[2] };
}

async function checkPastedBundle() {
  show("bundle", () => h("p", { class: "notice" }, t("verify.working")));
  try {
    const checkpoint = parseCheckpoint(document.getElementById("bundle-checkpoint").value);
    const statement = await verifyBundle(document.getElementById("bundle-text").value, trusted.genesis, checkpoint);
    show("bundle", () => renderStatement(statement));
  } catch (error) {
    show("bundle", () => failure(error));
  }
}

// ------------------------------------------------------------------------ a credential

async function proveState(keyBytes, service = "vc") {
  const path = `/v1/bundles/state/${service}/${toHex(keyBytes)}`;
  const statement = await verifyBundle(await fetchBundle(path), trusted.genesis);
  if (statement.kind !== "state" || statement.facts.key !== toHex(concatBytes(utf8(`${service}/`), keyBytes))) {
    throw new BundleError("answer", t("verify.other_question"));
  }
  return statement;
}

function chunkKey(listId, index) {
  const chunk = Math.floor(index / STATUS_CHUNK_ENTRIES);
  return concatBytes(utf8(`bits/${listId}/`), Uint8Array.of(chunk >>> 24, (chunk >>> 16) & 255, (chunk >>> 8) & 255, chunk & 255));
}

async function checkStatusEntry(entry) {
  const listId = entry.get("list_id");
  const index = Number(entry.get("index"));
  const statement = await proveState(chunkKey(listId, index));
  const bits = statement.facts.value === null ? [] : decodeCbor(Uint8Array.from(
    statement.facts.value.match(/../g).map((pair) => parseInt(pair, 16))));
  const set = bits.some((item) => Array.isArray(item) && Number(item[0]) === index);
  return { listId, index, purpose: entry.get("purpose") ?? "", set, height: statement.height };
}

async function askIssuer(did, type) {
  const answer = JSON.parse(await fetchText(`/v1/services/vc/queries/issuer?did=${encodeURIComponent(did)}`));
  return Boolean(answer.result && answer.result.types && Object.hasOwn(answer.result.types, type));
}

async function readContext(name) {
  const response = await fetch(`${CONTEXTS_PATH}${name}`);
  if (!response.ok) throw new Error(`${CONTEXTS_PATH}${name}: ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function findDidVersion(did, height) {
  // Only a hint: didkey.js proves the version it names, and its successor, from the chain.
  const answer = JSON.parse(await fetchText(`/v1/services/did/queries/resolve?did=${encodeURIComponent(did)}`
    + `&height=${height}`));
  return Number(answer.result?.didDocumentMetadata?.versionId ?? 0);
}

function credentialIssuer(credential) {
  const issuer = credential.issuer;
  return issuer !== null && typeof issuer === "object" ? issuer.id : issuer;
}

async function checkSignature(credential, record) {
  // The proof verifies under the key the anchored issuer's DID held at the issuance height.
  const issuer = record.get("issuer");
  const height = record.get("height");
  checkCredentialType(credential, record.get("type"));
  if (credentialIssuer(credential) !== issuer) {
    throw new ProofError("issuer", `the credential names issuer ${JSON.stringify(credentialIssuer(credential) ?? null)}, `
      + `the chain's anchor ${issuer}`);
  }
  shippedContexts ??= await loadShippedContexts(readContext).catch((error) => {
    throw error instanceof ProofError ? error : new ProofError("context", String(error.message ?? error));
  });
  let key = null;
  const resolveKey = async (method) => {
    key = await proveAssertionKey(method, issuer, height, { proveState: (bytes) => proveState(bytes, "did"),
      findVersion: findDidVersion });
    return key.publicKey;
  };
  const proof = await verifyProof(credential, resolveKey, createDocumentLoader(shippedContexts));
  return { ...key, method: proof.verificationMethod, contexts: shippedContexts.size };
}

function validityNow(credential) {
  const now = Date.now();
  const from = Date.parse(credential.validFrom ?? "");
  const until = credential.validUntil === undefined ? Infinity : Date.parse(credential.validUntil);
  if (Number.isNaN(from) || Number.isNaN(until)) return "unknown";
  if (now < from) return "not_yet_valid";
  return now < until ? "valid" : "expired";
}

async function checkCredential() {
  show("credential", () => h("p", { class: "notice" }, t("verify.working")));
  try {
    const text = document.getElementById("credential-text").value;
    if (text.length > CREDENTIAL_CHARS_MAX) throw new Error(t("verify.credential.too_large"));
    let credential;
    try {
      credential = JSON.parse(text);
    } catch {
      throw new Error(t("verify.credential.not_json"));
    }
    const digest = await sha256(utf8(canonicalJson(credential)));
    const anchor = await proveState(concatBytes(utf8(ANCHOR_PREFIX), digest));
    if (anchor.facts.value === null) {
      show("credential", () => [verdict("unknown", t("verify.headline.credential_unknown")),
        checkedList([...provenChecks(anchor), ["browser", "verify.check.credential_hash", { hash: toHex(digest).slice(0, 16) }]])]);
      return;
    }
    const record = decodeCbor(Uint8Array.from(anchor.facts.value.match(/../g).map((pair) => parseInt(pair, 16))));
    const signature = await checkSignature(credential, record);
    const role = await proveIssuerRole(record, { proveState: (bytes) => proveState(bytes, AUTH_NAMESPACE) });
    const statuses = await Promise.all((record.get("status") ?? []).map(checkStatusEntry));
    const registered = await askIssuer(record.get("issuer"), record.get("type")).catch(() => false);
    const validity = validityNow(credential);
    const revoked = statuses.some((item) => item.set && item.purpose !== "suspension");
    const suspended = statuses.some((item) => item.set && item.purpose === "suspension");
    const outcome = revoked ? "revoked" : suspended ? "suspended" : validity === "valid" ? "valid" : validity;
    show("credential", () => renderCredential(outcome, anchor, record, { statuses, registered, validity, digest, signature, role }));
  } catch (error) {
    show("credential", () => failure(error));
  }
}

function signatureChecks(signature, values) {
  return [["browser", "verify.check.proof", { method: signature.method, key: signature.multikey.slice(0, 16) }],
    ["browser", "verify.check.issuer_key", { method: signature.method, issuer: values.issuer, height: values.height,
      version: signature.version, version_height: formatNumber(Number(signature.versionHeight)),
      proven_height: formatNumber(Number(signature.provenHeight)) }],
    ["node", "verify.check.contexts", { n: signature.contexts }]];
}

function roleCheck(role, values) {
  const held = { role: role.role, key: role.signer.slice(0, 16), height: values.height,
    granted: formatNumber(Number(role.grantedHeight)), proven_height: formatNumber(Number(role.provenHeight)) };
  if (role.revokedHeight === null) return ["browser", "verify.check.role_held", held];
  return ["browser", "verify.check.role_held_revoked", { ...held, revoked: formatNumber(Number(role.revokedHeight)) }];
}

function renderCredential(outcome, anchor, record, { statuses, registered, validity, digest, signature, role }) {
  const values = { type: record.get("type"), issuer: record.get("issuer"), height: formatNumber(Number(record.get("height"))),
    time: when(record.get("time_ms")) };
  const checks = [...provenChecks(anchor),
    ["browser", "verify.check.credential_hash", { hash: toHex(digest).slice(0, 16) }],
    ...signatureChecks(signature, values),
    ...statuses.map((item) => ["browser", item.set ? "verify.check.status_set" : "verify.check.status_clear",
      { list: item.listId, index: item.index, purpose: item.purpose }]),
    ["browser", `verify.check.validity_${validity}`, {}],
    roleCheck(role, values),
    ["node", registered ? "verify.check.issuer_registered" : "verify.check.issuer_unregistered", values]];
  const headline = outcome === "unknown" ? "dates" : outcome;
  return [verdict(outcome, t(`verify.headline.credential_${headline}`)), h("p", {}, t("verify.plain.credential", values)),
    checkedList(checks)];
}

// ------------------------------------------------------------------------------ wiring

function wireDropZone() {
  const zone = document.getElementById("drop-zone");
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("active");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("active"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("active");
    if (event.dataTransfer.files.length > 0) checkFile(event.dataTransfer.files[0]);
  });
  document.getElementById("document-file").addEventListener("change", (event) => {
    if (event.target.files.length > 0) checkFile(event.target.files[0]);
  });
}

function wireTrust() {
  document.getElementById("genesis-file").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    try {
      await pin(await file.text(), "file");
      await compareWithNode();
    } catch (error) {
      const warning = document.getElementById("trust-warning");
      warning.hidden = false;
      warning.dataset.key = "verify.trust.bad_file";
      warning.dataset.values = JSON.stringify({ reason: String(error.message ?? error) });
      renderTrust();
    }
  });
  document.getElementById("trust-forget").addEventListener("click", async () => {
    try {
      localStorage.removeItem(STORAGE_KEY);
    } catch {
      // Nothing was stored.
    }
    trusted = null;
    await loadTrust();
  });
}

async function start() {
  await initI18n();
  onLanguageChange(() => {
    renderTrust();
    for (const [panel, render] of Object.entries(renderers)) replace(document.getElementById(`${panel}-result`), render());
  });
  wireDropZone();
  wireTrust();
  document.getElementById("bundle-verify").addEventListener("click", checkPastedBundle);
  document.getElementById("credential-verify").addEventListener("click", checkCredential);
  await loadTrust();
  document.body.dataset.ready = "true";
}

start();
