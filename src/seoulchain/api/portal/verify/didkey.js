// The key a `did:seoul` DID listed for assertions at a height, proven from the chain's state
// (services/did.py, docs/spec/did-seoul.md), for a credential's proof as of its issuance.
//
// Theory of operation. The did service never overwrites a version of a DID document:
// `ver/<did>/<version, 8 digits>` holds each one with the height of the transaction that
// made it, numbered in commit order. So the version in force at height H is the version v
// made at or before H whose successor v + 1 is absent, or was made after H. The page asks
// the node which version that is (`did.resolve` as of H: only a hint), then has both state
// keys proven by bundles from the pinned genesis (`proveState`), at a height not below H.
// A node that names the wrong version makes a check fail; it cannot make a key pass. The
// key is the version's key whose id (`<did>#key-<index>`) the proof names: every key of a
// did:seoul document is in its assertionMethod (services/did.py, `compute_document`).

import { decodeCbor } from "./cbor.js";
import { concatBytes, toBase58, utf8 } from "./bytes.js";
import { ProofError } from "./integrity.js";

const METHOD_PREFIX = "did:seoul:";
// services/did.py: the identifier of a DID is 16 to 22 base58btc characters; a key number
// is below 10^6; versions are numbered with 8 digits, at most VERSIONS_PER_DID_MAX of them.
const METHOD_PATTERN = /^(did:seoul:[1-9A-HJ-NP-Za-km-z]{16,22})#key-([0-9]{1,6})$/;
const VERSIONS_PER_DID_MAX = 64;
const VERSION_DIGITS = 8;
// crypto/multikey.py: the multicodec header of an Ed25519 public key.
const ED25519_PUB_CODEC = Uint8Array.of(0xed, 0x01);
const PUBLIC_KEY_BYTES = 32;

function versionKey(did, version) {
  return utf8(`ver/${did}/${String(version).padStart(VERSION_DIGITS, "0")}`);
}

function decodeVersion(statement, did, version) {
  const value = statement.facts.value;
  const record = decodeCbor(Uint8Array.from(value.match(/../g), (pair) => parseInt(pair, 16)));
  const keys = record instanceof Map ? record.get("keys") : undefined;
  if (!(record instanceof Map && record.get("version") === BigInt(version) && typeof record.get("height") === "bigint"
    && Array.isArray(keys) && typeof record.get("deactivated") === "boolean")) {
    throw new ProofError("key", `the state value of version ${version} of ${did} is not a DID document version`);
  }
  return record;
}

export function encodeMultikey(publicKey) {
  return `z${toBase58(concatBytes(ED25519_PUB_CODEC, publicKey))}`;
}

export async function proveAssertionKey(method, issuer, height, { proveState, findVersion }) {
  // Return the key `method` names in `issuer`'s document in force at `height`, proven.
  const match = METHOD_PATTERN.exec(method);
  if (method.split("#")[0] !== issuer) {
    throw new ProofError("key", `the proof is by ${method}, not by a key of the issuer ${issuer}`);
  }
  if (!issuer.startsWith(METHOD_PREFIX) || match === null) {
    throw new ProofError("key", `${method} is not a key of a did:seoul document (${issuer}#key-<n>)`);
  }
  const version = await findVersion(issuer, height);
  if (!Number.isSafeInteger(version) || version < 1 || version > VERSIONS_PER_DID_MAX) {
    throw new ProofError("key", `${issuer} had no document at height ${height}, by the node's answer`);
  }
  const current = await proveState(versionKey(issuer, version));
  const next = await proveState(versionKey(issuer, version + 1));
  if (current.facts.value === null) throw new ProofError("key", `version ${version} of ${issuer} is not in the chain's state`);
  const record = decodeVersion(current, issuer, version);
  if (record.get("height") > BigInt(height)) {
    throw new ProofError("key", `version ${version} of ${issuer} was made at height ${record.get("height")}, after ${height}`);
  }
  if (next.height < BigInt(height)) {
    throw new ProofError("key", `the node proved ${issuer}'s versions at height ${next.height}, before ${height}`);
  }
  if (next.facts.value !== null && decodeVersion(next, issuer, version + 1).get("height") <= BigInt(height)) {
    throw new ProofError("key", `version ${version} of ${issuer} was already replaced at height ${height}`);
  }
  if (record.get("deactivated")) throw new ProofError("key", `${issuer} was deactivated at height ${height}`);
  const entry = record.get("keys").find((key) => key instanceof Map && key.get("index") === BigInt(match[2]));
  const publicKey = entry?.get("public_key");
  if (!(publicKey instanceof Uint8Array && publicKey.length === PUBLIC_KEY_BYTES)) {
    throw new ProofError("key", `${method} is not in the assertionMethod of ${issuer} at height ${height} `
      + "(a key rotated away or never added)");
  }
  return { publicKey, multikey: encodeMultikey(publicKey), version, versionHeight: record.get("height"),
    provenHeight: current.height < next.height ? current.height : next.height };
}
