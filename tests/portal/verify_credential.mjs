// Runs the verification page's Data Integrity verifier (src/seoulchain/api/portal/verify/
// integrity.js, with the vendored jsonld and the shipped contexts, as the page loads them)
// on credential cases, and prints one JSON report: each case's outcome and failing step.
//
//   node tests/portal/verify_credential.mjs CASES.json
//   node tests/portal/verify_credential.mjs --didkey CASES.json
//
// CASES.json: {"cases": [{"name", "document", "public_key": hex}], "extra_contexts": {url: doc}};
// with --didkey, the issuer key's selection (verify/didkey.js) on given DID states:
// {"cases": [{"name", "method", "issuer", "height", "hint", "states": {version: {"height",
// "value": hex CBOR or null}}}]}, each state standing for a verified state bundle;
// with --role, the issuing key's role at issuance (verify/role.js) on given role histories:
// {"cases": [{"name", "type", "signer": hex, "height", "state": {"height", "value": hex CBOR
// or null, "key": hex full state key, when the node answers for another key}}]}.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import {
  ProofError, createDocumentLoader, loadShippedContexts, verifyProof,
} from "../../src/seoulchain/api/portal/verify/integrity.js";
import { proveAssertionKey } from "../../src/seoulchain/api/portal/verify/didkey.js";
import { proveIssuerRole } from "../../src/seoulchain/api/portal/verify/role.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CONTEXTS = `${ROOT}src/seoulchain/credentials/contexts/`;
// The page loads the bundle as a classic script, which sets globalThis.jsonld.
globalThis.jsonld = createRequire(import.meta.url)(`${ROOT}src/seoulchain/api/portal/verify/vendor/jsonld.min.js`);

function fromHex(text) {
  return Uint8Array.from(text.match(/../g) ?? [], (pair) => parseInt(pair, 16));
}

async function run(path) {
  const input = JSON.parse(readFileSync(path, "utf8"));
  const documents = await loadShippedContexts(async (name) => new Uint8Array(readFileSync(CONTEXTS + name)));
  for (const [url, document] of Object.entries(input.extra_contexts ?? {})) documents.set(url, document);
  const loader = createDocumentLoader(documents);
  const results = [];
  for (const testCase of input.cases) {
    const resolveKey = async () => fromHex(testCase.public_key);
    try {
      const verified = await verifyProof(testCase.document, resolveKey, loader);
      results.push({ name: testCase.name, ok: true, method: verified.verificationMethod,
        proofConfigHash: verified.proofConfigHash, documentHash: verified.documentHash });
    } catch (error) {
      const step = error instanceof ProofError ? error.step : null;
      results.push({ name: testCase.name, ok: false, step, error: String(error.message ?? error) });
    }
  }
  return results;
}

async function runDidKey(path) {
  const results = [];
  for (const testCase of JSON.parse(readFileSync(path, "utf8")).cases) {
    const proveState = async (keyBytes) => {
      const version = Number(new TextDecoder().decode(keyBytes).split("/").pop());
      const state = testCase.states[String(version)] ?? { height: testCase.tip, value: null };
      return { height: BigInt(state.height), facts: { value: state.value } };
    };
    try {
      const key = await proveAssertionKey(testCase.method, testCase.issuer, BigInt(testCase.height),
        { proveState, findVersion: async () => testCase.hint });
      results.push({ name: testCase.name, ok: true, publicKey: Buffer.from(key.publicKey).toString("hex"),
        version: key.version, multikey: key.multikey });
    } catch (error) {
      results.push({ name: testCase.name, ok: false, step: error.step ?? null, error: String(error.message ?? error) });
    }
  }
  return results;
}

function hex(bytes) {
  return Buffer.from(bytes).toString("hex");
}

async function runRole(path) {
  const results = [];
  for (const testCase of JSON.parse(readFileSync(path, "utf8")).cases) {
    const record = new Map([["type", testCase.type], ["signer", fromHex(testCase.signer)],
      ["height", BigInt(testCase.height)]]);
    let asked = null;
    const proveState = async (keyBytes) => {
      asked = hex(keyBytes);
      const key = testCase.state.key ?? hex(Buffer.concat([Buffer.from("auth/"), keyBytes]));
      return { height: BigInt(testCase.state.height), facts: { key, value: testCase.state.value } };
    };
    try {
      const role = await proveIssuerRole(record, { proveState });
      results.push({ name: testCase.name, ok: true, asked, role: role.role, granted: Number(role.grantedHeight),
        revoked: role.revokedHeight === null ? null : Number(role.revokedHeight) });
    } catch (error) {
      results.push({ name: testCase.name, ok: false, asked, step: error.step ?? null,
        error: String(error.message ?? error) });
    }
  }
  return results;
}

const modes = { "--didkey": runDidKey, "--role": runRole };
const results = Object.hasOwn(modes, process.argv[2]) ? await modes[process.argv[2]](process.argv[3])
  : await run(process.argv[2]);
process.stdout.write(`${JSON.stringify({ results })}\n`);
