// Verifying a proof bundle (docs/spec/proofs.md §5, §7): a second, independent
// implementation of the reference `seoulchain.light.bundle.verify_bundle`.
//
// Theory of operation. The only trust anchor is the genesis the caller passes (a file the
// user trusts, or the one pinned at first use); the server that handed over the bundle is
// not trusted at all. `verifyBundle` runs the named steps of §7 in order — parse, format,
// genesis, trust, light blocks, proof against the proving header — and either returns the
// statement `{kind, text, height, facts}` or throws a BundleError whose `step` names the
// step that failed. Crypto is WebCrypto only (SHA-256, Ed25519); CBOR, JSON, hex and
// base64 are parsed strictly here, so a changed byte anywhere in a bundle fails.

import { DecodeError } from "./cbor.js";
import { equalBytes, fromBase64, fromHex, sha256, toHex, utf8 } from "./bytes.js";
import { parseStrictJson } from "./json.js";
import {
  BLOCK_BYTES_MAX, TX_BYTES_MAX, VALIDATOR_SET_BYTES_MAX, VerificationError, decodeCommit, decodeHeader,
  decodeValidatorSet, parseGenesis,
} from "./ledger.js";
import { DEFAULT_TRUST_LEVEL, checkLightBlock, makeGenesisTrust, makeTrustedState, verifyLightBlock } from "./lightclient.js";
import { requireInt, requireList, requireObject, verifyClaim } from "./claims.js";
import { verifyCometCertificate } from "./cometbft.js";

export { parseGenesis, parseStrictJson, toHex };

export const BUNDLE_FORMAT = "seoulchain-proof-bundle";
const BUNDLE_VERSION = 1n;
// proofs.md §10: a bundle is a few KiB; 4 MiB bounds the parse of a hostile file.
export const BUNDLE_BYTES_MAX = 4 * 1024 * 1024;
// proofs.md §10: a bisection trace is far shorter; bounds a hostile bundle's signature checks.
const LIGHT_BLOCKS_MAX = 256;
const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export class BundleError extends Error {
  constructor(step, message) {
    super(`${step}: ${message}`);
    this.name = "BundleError";
    this.step = step;
    this.reason = message;
  }
}

async function step(name, action) {
  try {
    return await action();
  } catch (error) {
    if (error instanceof BundleError) throw error;
    if (error instanceof DecodeError || error instanceof VerificationError) throw new BundleError(name, error.message);
    throw error;
  }
}

export async function loadGenesis(text) {
  return parseGenesis(parseStrictJson(text));
}

export function parseBundle(input) {
  const bytes = typeof input === "string" ? utf8(input) : input;
  if (bytes.length > BUNDLE_BYTES_MAX) throw new BundleError("parse", `the bundle is larger than ${BUNDLE_BYTES_MAX} bytes`);
  let value;
  try {
    value = parseStrictJson(UTF8.decode(bytes));
  } catch (error) {
    throw new BundleError("parse", `the bundle is not strict JSON: ${error.message}`);
  }
  if (!(value instanceof Map)) throw new BundleError("parse", "the bundle must be a JSON object");
  return value;
}

function decodeLightBlock(value, name) {
  const fields = requireObject(value, name, ["header", "commit", "validators"]);
  const header = decodeHeader(fromBase64(fields.get("header"), `${name} header`, TX_BYTES_MAX));
  const commit = decodeCommit(fromBase64(fields.get("commit"), `${name} commit`, BLOCK_BYTES_MAX));
  const validators = decodeValidatorSet(fromBase64(fields.get("validators"), `${name} validators`, VALIDATOR_SET_BYTES_MAX));
  return { header, commit, validators };
}

async function withBlockId(block) {
  return { ...block, blockId: await sha256(block.header.bytes) };
}

function checkEnvelope(bundle) {
  // A chain run under CometBFT carries `cometbft` signed headers instead (proofs.md §13).
  const certificate = bundle instanceof Map && bundle.has("cometbft") ? "cometbft" : "light_blocks";
  const fields = requireObject(bundle, "bundle", ["format", "version", "genesis_hash", "trust", certificate, "proof"]);
  if (fields.get("format") !== BUNDLE_FORMAT) {
    throw new DecodeError(`format is ${JSON.stringify(fields.get("format"))}, not ${JSON.stringify(BUNDLE_FORMAT)}`);
  }
  if (fields.get("version") !== BUNDLE_VERSION) {
    throw new DecodeError(`bundle version ${fields.get("version")} is not supported (this verifier reads version 1)`);
  }
  return fields;
}

function checkGenesis(value, genesis) {
  if (!equalBytes(fromHex(value, "genesis_hash", 32), genesis.hash)) {
    throw new VerificationError(`the bundle is for genesis ${value}, the given genesis is ${toHex(genesis.hash)}`);
  }
}

async function computeRootOfTrust(trust, genesis, checkpoint) {
  if (trust instanceof Map && trust.get("from") === "genesis") {
    requireObject(trust, "trust", ["from"]);
    return makeGenesisTrust(genesis);
  }
  if (!(trust instanceof Map && trust.get("from") === "checkpoint")) {
    throw new DecodeError('trust must be {"from": "genesis"} or a checkpoint');
  }
  requireObject(trust, "trust", ["from", "height", "block_id"]);
  const height = requireInt(trust.get("height"), "trust height", 1n);
  const blockId = fromHex(trust.get("block_id"), "trust block_id", 32);
  if (checkpoint === null || checkpoint === undefined) {
    throw new VerificationError(`the bundle starts from a checkpoint (height ${height}, block ${toHex(blockId)}), `
      + "not from genesis; verify it only if you trust that checkpoint, by stating it");
  }
  if (height !== BigInt(checkpoint.height) || toHex(blockId) !== checkpoint.blockId) {
    throw new VerificationError(`the bundle's checkpoint (height ${height}, block ${toHex(blockId)}) is not the `
      + `trusted one (height ${checkpoint.height}, block ${checkpoint.blockId})`);
  }
  return { height, blockId };
}

async function checkCheckpointBlock(raw, checkpoint, chainId) {
  const block = await withBlockId(decodeLightBlock(raw, "light block 1"));
  if (block.header.height !== checkpoint.height || !equalBytes(block.blockId, checkpoint.blockId)) {
    throw new VerificationError("the first light block is not the trusted checkpoint");
  }
  await checkLightBlock(block, chainId);
  return { state: makeTrustedState(block, chainId), header: block.header };
}

/**
 * Verify a bundle (text, bytes or parsed Map) against a parsed genesis and, for a bundle
 * from a checkpoint, the checkpoint the user trusts: `{height, blockId: "<64 hex>"}`.
 */
export async function verifyBundle(input, genesis, checkpoint = null, trustLevel = DEFAULT_TRUST_LEVEL) {
  const bundle = input instanceof Map ? input : parseBundle(input);
  const fields = await step("format", () => checkEnvelope(bundle));
  await step("genesis", () => checkGenesis(fields.get("genesis_hash"), genesis));
  let trusted = await step("trust", () => computeRootOfTrust(fields.get("trust"), genesis, checkpoint));
  if (fields.has("cometbft")) return verifyCometBundle(fields, genesis, trustLevel, trusted);
  const rawBlocks = await step("light blocks", () => requireList(fields.get("light_blocks"), "light_blocks", LIGHT_BLOCKS_MAX));
  if (rawBlocks.length === 0) throw new BundleError("light blocks", "the bundle carries no light block");
  let start = 0;
  let header = null;
  if (fields.get("trust").get("from") === "checkpoint") {
    ({ state: trusted, header } = await step("light block 1", () => checkCheckpointBlock(rawBlocks[0], trusted, genesis.chainId)));
    start = 1;
  }
  for (let position = start; position < rawBlocks.length; position += 1) {
    const name = `light block ${position + 1}`;
    const block = await step(name, async () => withBlockId(decodeLightBlock(rawBlocks[position], name)));
    const current = trusted;
    trusted = await step(`${name} (height ${block.header.height})`, () => verifyLightBlock(current, block, trustLevel));
    header = block.header;
  }
  return proveClaim(fields, header, genesis, rawBlocks.length);
}

async function proveClaim(fields, proving, genesis, lightBlocks) {
  const statement = await step(`proof against header ${proving.height}`, () => verifyClaim(fields.get("proof"), proving, genesis));
  return { ...statement, genesisHash: toHex(genesis.hash), chainId: genesis.chainId, trust: fields.get("trust").get("from"),
    lightBlocks };
}

async function verifyCometBundle(fields, genesis, trustLevel, trusted) {
  // From a checkpoint, `trusted` is the `{height, blockId}` the user stated (and the bundle's
  // `trust` names): the first CometBFT signed header must be that header.
  const checkpoint = fields.get("trust").get("from") === "checkpoint" ? trusted : null;
  const header = await verifyCometCertificate(fields.get("cometbft"), genesis, trustLevel, step, checkpoint);
  return proveClaim(fields, header, genesis, fields.get("cometbft").get("light_blocks").length);
}
