// Checks the JavaScript bundle verifier (src/seoulchain/api/portal/verify/) against the
// proof vectors of docs/spec/vectors/proofs.json, and optionally against bundles a live
// node produced. Prints one JSON report on stdout; exits 1 if any case disagrees.
//
//   node tests/portal/verify_vectors.mjs [VECTORS.json] [--flips N]
//   node tests/portal/verify_vectors.mjs --bundle FILE --genesis FILE [--checkpoint H:BLOCK_ID]

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { BundleError, loadGenesis, verifyBundle } from "../../src/seoulchain/api/portal/verify/bundle.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

function option(name, fallback = null) {
  const index = process.argv.indexOf(name);
  return index === -1 ? fallback : process.argv[index + 1];
}

function parseCheckpoint(text) {
  if (text === null) return null;
  const [height, blockId] = text.split(":");
  return { height: BigInt(height), blockId };
}

async function outcome(bundleText, genesis, checkpoint) {
  try {
    const statement = await verifyBundle(bundleText, genesis, checkpoint);
    return { ok: true, text: statement.text, kind: statement.kind, facts: statement.facts };
  } catch (error) {
    if (error instanceof BundleError) return { ok: false, step: error.step, error: error.message };
    return { ok: false, step: null, error: `unexpected ${error.name}: ${error.message}` };
  }
}

function renderCanonical(value) {
  // proofs.md §5: sorted keys, no whitespace, ASCII only, a final newline.
  const sort = (item) => (Array.isArray(item) ? item.map(sort) : item !== null && typeof item === "object"
    ? Object.fromEntries(Object.keys(item).sort().map((key) => [key, sort(item[key])])) : item);
  return JSON.stringify(sort(value)).replace(/[\u007f-\uffff]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`) + "\n";
}

// The claim kinds this verifier implements (proofs.md §6); a vector of another kind is
// reported as unsupported, never counted as agreeing.
const SUPPORTED_KINDS = ["tx", "state", "document", "vehicle", "labor"];

function isSupported(vector) {
  return SUPPORTED_KINDS.includes(vector.bundle?.proof?.kind);
}

async function checkVectors(path, flips) {
  const vectors = JSON.parse(readFileSync(path, "utf8"));
  const genesis = await loadGenesis(JSON.stringify(vectors.genesis));
  const failures = [];
  const results = [];
  if (Buffer.from(genesis.hash).toString("hex") !== vectors.genesis_hash) {
    failures.push({ name: "genesis hash", got: Buffer.from(genesis.hash).toString("hex") });
  }
  const unsupported = [...vectors.valid, ...vectors.invalid].filter((vector) => !isSupported(vector))
    .map((vector) => ({ name: vector.name, kind: vector.bundle?.proof?.kind ?? null }));
  for (const vector of vectors.valid.filter(isSupported)) {
    const checkpoint = vector.checkpoint && { height: BigInt(vector.checkpoint.height), blockId: vector.checkpoint.block_id };
    const text = renderCanonical(vector.bundle);
    const got = await outcome(text, genesis, checkpoint);
    const ok = got.ok && got.text === vector.statement && text.length === vector.bundle_bytes;
    results.push({ name: vector.name, valid: true, ok });
    if (!ok) failures.push({ name: vector.name, got, bytes: text.length, expected: vector.statement });
  }
  for (const vector of vectors.invalid.filter(isSupported)) {
    const got = await outcome(renderCanonical(vector.bundle), genesis, null);
    const ok = !got.ok && got.step !== null && got.step.startsWith(vector.step);
    results.push({ name: vector.name, valid: false, ok, step: got.step, error: got.error });
    if (!ok) failures.push({ name: vector.name, expected: vector.step, got });
  }
  const flipped = await flipBytes(vectors.valid.find((vector) => vector.name === "state key absent"), genesis, flips);
  failures.push(...flipped.failures);
  return { valid: vectors.valid.length, invalid: vectors.invalid.length, flips: flipped.count, results, unsupported,
    failures };
}

async function flipBytes(vector, genesis, count) {
  // proofs.md §7.3 "Byte flips": no single changed byte of a canonical bundle verifies.
  const bytes = Buffer.from(renderCanonical(vector.bundle));
  const failures = [];
  const stride = Math.max(1, Math.floor(bytes.length / Math.max(count, 1)));
  let tried = 0;
  for (let position = 0; count > 0 && position < bytes.length; position += stride) {
    const changed = Buffer.from(bytes);
    changed[position] ^= 0x01;
    tried += 1;
    const got = await outcome(new Uint8Array(changed), genesis, null);
    if (got.ok || got.step === null) failures.push({ name: `flip at byte ${position}`, got });
  }
  return { count: tried, failures };
}

async function checkOne() {
  const genesis = await loadGenesis(readFileSync(option("--genesis"), "utf8"));
  const got = await outcome(new Uint8Array(readFileSync(option("--bundle"))), genesis,
    parseCheckpoint(option("--checkpoint")));
  return { ...got, failures: got.ok ? [] : [got] };
}

const report = option("--bundle") !== null ? await checkOne()
  : await checkVectors(process.argv[2] && !process.argv[2].startsWith("--") ? process.argv[2]
    : `${ROOT}docs/spec/vectors/proofs.json`, Number(option("--flips", "0")));
process.stdout.write(`${JSON.stringify(report, (key, value) => (typeof value === "bigint" ? value.toString() : value))}\n`);
process.exit(report.failures.length === 0 ? 0 : 1);
