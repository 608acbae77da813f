// Ledger structures a verifier reads (docs/spec/ledger.md §6–§10, §16): strict decoders,
// the commit rule, and the genesis file with its hash.

import { DecodeError, compareBytes, decodeCbor, encodeCbor } from "./cbor.js";
import { concatBytes, equalBytes, fromHex, sha256, toHex, utf8 } from "./bytes.js";
import { isValidSignature } from "./ed25519.js";

export class VerificationError extends Error {
  constructor(message) {
    super(message);
    this.name = "VerificationError";
  }
}

export const FORMAT_VERSION = 1n;
// ledger.md §6 and §10: a transaction or a header decoded on its own is at most 64 KiB.
export const TX_BYTES_MAX = 65536;
// ledger.md §11: a block (and so a commit) is at most 8 MiB.
export const BLOCK_BYTES_MAX = 8 * 1024 * 1024;
// proofs.md §10: 150 validators of key, power and a 64-character name.
export const VALIDATOR_SET_BYTES_MAX = 64 * 1024;
// ledger.md §7: 1 to 150 validators, as CometBFT.
const VALIDATORS_MAX = 150;
const VALIDATOR_NAME_CHARS_MAX = 64;
// ledger.md §5: heights are CometBFT's int64, rounds its int32.
const HEIGHT_MAX = 2n ** 63n - 1n;
const ROUND_MAX = 2n ** 31n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;
const HASH_BYTES = 32;
const CHAIN_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$/;
const NAME_PATTERN = /^[a-z][a-z0-9_]{0,31}$/;
const PRECOMMIT = 2n;
const GENESIS_VERSIONS = [1n, 2n];
const AGENCIES_VERSION = 1n;

export function isUint(value) {
  return typeof value === "bigint" && value >= 0n;
}

export function isBytes(value, size) {
  return value instanceof Uint8Array && (size === undefined || value.length === size);
}

function requireArray(value, length, name) {
  if (!Array.isArray(value) || value.length !== length) {
    throw new DecodeError(`${name} must be a CBOR array of ${length} items`);
  }
  return value;
}

function requireField(ok, name, rule) {
  if (!ok) throw new DecodeError(`${name} ${rule}`);
}

function isHeight(value) {
  return isUint(value) && value >= 1n && value <= HEIGHT_MAX;
}

function isChainId(value) {
  return typeof value === "string" && CHAIN_ID_PATTERN.test(value);
}

export function decodeHeader(bytes) {
  const items = requireArray(decodeCbor(bytes, TX_BYTES_MAX), 15, "header");
  const [version, chainId, height, timeMs, prevBlockId, txRoot, logRoot, logSize, stateRoot,
    resultsRoot, evidenceRoot, validatorsHash, nextValidatorsHash, proposer, lastCommitHash] = items;
  requireField(version === FORMAT_VERSION, "header version", "must be 1");
  requireField(isChainId(chainId), "header chain_id", "is not a chain id");
  requireField(isHeight(height), "header height", "is not a height");
  requireField(isUint(timeMs), "header time_ms", "must be an unsigned integer");
  const linkBytes = height === 1n ? 0 : HASH_BYTES;
  requireField(isBytes(prevBlockId, linkBytes), "header prev_block_id", `must be ${linkBytes} bytes`);
  requireField(isBytes(lastCommitHash, linkBytes), "header last_commit_hash", `must be ${linkBytes} bytes`);
  for (const [name, value] of [["tx_root", txRoot], ["log_root", logRoot], ["state_root", stateRoot],
    ["results_root", resultsRoot], ["evidence_root", evidenceRoot],
    ["validators_hash", validatorsHash], ["next_validators_hash", nextValidatorsHash],
    ["proposer", proposer]]) {
    requireField(isBytes(value, HASH_BYTES), `header ${name}`, "must be 32 bytes");
  }
  requireField(isUint(logSize), "header log_size", "must be an unsigned integer");
  return { bytes, chainId, height, timeMs, prevBlockId, logRoot, logSize, stateRoot, resultsRoot,
    validatorsHash, nextValidatorsHash };
}

export function decodeCommit(bytes) {
  const [version, height, round, blockId, signatures] = requireArray(
    decodeCbor(bytes, BLOCK_BYTES_MAX), 5, "commit");
  requireField(version === FORMAT_VERSION, "commit version", "must be 1");
  requireField(isHeight(height), "commit height", "is not a height");
  requireField(isUint(round) && round <= ROUND_MAX, "commit round", "is not a round");
  requireField(isBytes(blockId, HASH_BYTES), "commit block_id", "must be 32 bytes");
  requireField(Array.isArray(signatures) && signatures.length <= VALIDATORS_MAX, "commit signatures",
    `must be an array of at most ${VALIDATORS_MAX} entries`);
  for (const entry of signatures) {
    requireField(Array.isArray(entry) && entry.length === 2 && isBytes(entry[0], 32)
      && isBytes(entry[1], 64), "commit signature", "must be [32-byte key, 64-byte signature]");
  }
  return { height, round, blockId, signatures: signatures.map(([publicKey, signature]) => ({ publicKey, signature })) };
}

export function decodeValidatorSet(bytes) {
  const items = decodeCbor(bytes, VALIDATOR_SET_BYTES_MAX);
  requireField(Array.isArray(items) && items.length >= 1 && items.length <= VALIDATORS_MAX,
    "validator set", `must hold 1 to ${VALIDATORS_MAX} validators`);
  const validators = items.map((item) => {
    const [publicKey, power, name] = requireArray(item, 3, "validator");
    requireField(isBytes(publicKey, 32), "validator public_key", "must be 32 bytes");
    requireField(isUint(power) && power >= 1n, "validator power", "must be at least 1");
    requireField(typeof name === "string" && [...name].length <= VALIDATOR_NAME_CHARS_MAX,
      "validator name", `must be text of at most ${VALIDATOR_NAME_CHARS_MAX} characters`);
    return { publicKey, power, name };
  });
  for (let index = 1; index < validators.length; index += 1) {
    requireField(compareBytes(validators[index - 1].publicKey, validators[index].publicKey) < 0,
      "validator set", "must be sorted by public key with no key twice");
  }
  return makeValidatorSet(validators, bytes);
}

function makeValidatorSet(validators, bytes) {
  const powers = new Map(validators.map((validator) => [toHex(validator.publicKey), validator.power]));
  const totalPower = validators.reduce((total, validator) => total + validator.power, 0n);
  return { validators, bytes, powers, totalPower };
}

export function isQuorum(power, totalPower) {
  return 3n * power > 2n * totalPower;
}

export function decodeTransaction(bytes) {
  const items = requireArray(decodeCbor(bytes, TX_BYTES_MAX), 9, "transaction");
  const [version, chainId, signer, nonce, expiryHeight, service, method, args, signature] = items;
  requireField(version === FORMAT_VERSION, "transaction version", "must be 1");
  requireField(isChainId(chainId), "transaction chain_id", "is not a chain id");
  requireField(isBytes(signer, 32), "transaction signer", "must be 32 bytes");
  requireField(isUint(nonce) && nonce >= 1n, "transaction nonce", "must be at least 1");
  requireField(isUint(expiryHeight), "transaction expiry_height", "must be an unsigned integer");
  requireField(typeof service === "string" && NAME_PATTERN.test(service), "transaction service", "is not a name");
  requireField(typeof method === "string" && NAME_PATTERN.test(method), "transaction method", "is not a name");
  requireField(args instanceof Map, "transaction args", "must be a map");
  requireField(isBytes(signature, 64), "transaction signature", "must be 64 bytes");
  return { chainId, signer, nonce, service, method, signature, signBytes: computeTxSignBytes(bytes, chainId) };
}

function computeTxSignBytes(bytes, chainId) {
  // ledger.md §6: the body is the encoding with its array head 0x89 -> 0x88 and the trailing
  // signature (0x58 0x40 and 64 bytes) dropped; sign_bytes = [tag, chain_id, body].
  const body = bytes.slice(0, bytes.length - 66);
  body[0] = 0x88;
  return concatBytes(Uint8Array.of(0x83), encodeCbor("seoulchain/tx"), encodeCbor(chainId), body);
}

export async function verifyCommit(chainId, validatorSet, commit, blockId, height) {
  if (commit.height !== height) {
    throw new VerificationError(`commit is for height ${commit.height}, expected ${height}`);
  }
  if (!equalBytes(commit.blockId, blockId)) throw new VerificationError("commit is for another block id");
  const signBytes = encodeCbor(["seoulchain/vote", chainId,
    [FORMAT_VERSION, PRECOMMIT, commit.height, commit.round, commit.blockId]]);
  let signedPower = 0n;
  let previous = new Uint8Array(0);
  for (const { publicKey, signature } of commit.signatures) {
    if (compareBytes(publicKey, previous) <= 0) {
      throw new VerificationError("commit signatures are not in strictly ascending key order");
    }
    previous = publicKey;
    const power = validatorSet.powers.get(toHex(publicKey));
    if (power === undefined) throw new VerificationError(`commit signed by unknown validator ${toHex(publicKey)}`);
    if (!(await isValidSignature(publicKey, signBytes, signature))) {
      throw new VerificationError(`invalid commit signature by ${toHex(publicKey)}`);
    }
    signedPower += power;
  }
  if (!isQuorum(signedPower, validatorSet.totalPower)) {
    throw new VerificationError(`commit carries ${signedPower} of ${validatorSet.totalPower} voting `
      + "power, not more than two thirds");
  }
}

// ------------------------------------------------------------------------------ genesis

function field(object, name, fallback) {
  if (!(object instanceof Map)) throw new DecodeError("genesis parts must be JSON objects");
  if (object.has(name)) return object.get(name);
  if (fallback !== undefined) return fallback;
  throw new DecodeError(`genesis has no ${name}`);
}

function parseKey(text, name) {
  return fromHex(typeof text === "string" ? text.toLowerCase() : text, name, 32);
}

function checkFields(object, allowed, name) {
  for (const key of object.keys()) {
    if (!allowed.includes(key)) throw new DecodeError(`${name} has an unknown field ${JSON.stringify(key)}`);
  }
}

export async function parseGenesis(json) {
  if (!(json instanceof Map)) throw new DecodeError("a genesis file is a JSON object");
  checkFields(json, ["version", "chain_id", "genesis_time_ms", "validators", "roles", "agencies",
    "governance", "services"], "genesis");
  const version = field(json, "version", 1n);
  requireField(GENESIS_VERSIONS.includes(version), "genesis version", "must be 1 or 2");
  const chainId = field(json, "chain_id");
  requireField(isChainId(chainId), "genesis chain_id", "is not a chain id");
  const timeMs = field(json, "genesis_time_ms");
  requireField(isUint(timeMs) && timeMs <= UINT64_MAX, "genesis_time_ms", "must be an unsigned integer");
  const validators = parseGenesisValidators(field(json, "validators"));
  const roles = parseRoles(field(json, "roles", new Map()));
  const value = [version, chainId, timeMs, validators.map((item) => [item.publicKey, item.power, item.name]), roles];
  let agencies = [];
  if (version === 2n) {
    agencies = parseAgencies(field(json, "agencies"));
    value.push([AGENCIES_VERSION, agencies.map((agency) => [agency.name, agency.publicKey])]);
    const threshold = field(field(json, "governance", new Map([["threshold", 0n]])), "threshold");
    requireField(isUint(threshold), "governance threshold", "must be an unsigned integer");
    if (threshold > 0n) value.push(new Map([["threshold", threshold]]));
    const services = field(json, "services", new Map());
    requireField(services instanceof Map, "genesis services", "must be an object");
    if (services.size > 0) value.push(new Map([["services", services]]));
  }
  const validatorSet = makeValidatorSet(validators, encodeCbor(value[3]));
  return { chainId, timeMs, validatorSet, agencies, hash: await sha256(encodeCbor(value)) };
}

function parseGenesisValidators(items) {
  requireField(Array.isArray(items) && items.length >= 1 && items.length <= VALIDATORS_MAX,
    "genesis validators", `must hold 1 to ${VALIDATORS_MAX} validators`);
  const validators = items.map((item) => {
    checkFields(item, ["public_key", "power", "name"], "genesis validator");
    const power = field(item, "power");
    const name = field(item, "name", "");
    requireField(isUint(power) && power >= 1n && power <= UINT64_MAX, "validator power", "must be 1 to 2^64 - 1");
    requireField(typeof name === "string" && [...name].length <= VALIDATOR_NAME_CHARS_MAX, "validator name",
      "is too long");
    return { publicKey: parseKey(field(item, "public_key"), "validator public_key"), power, name };
  });
  validators.sort((left, right) => compareBytes(left.publicKey, right.publicKey));
  for (let index = 1; index < validators.length; index += 1) {
    requireField(!equalBytes(validators[index - 1].publicKey, validators[index].publicKey),
      "genesis validators", "name one key twice");
  }
  return validators;
}

function parseRoles(roles) {
  requireField(roles instanceof Map, "genesis roles", "must be an object");
  const value = new Map();
  for (const [role, keys] of roles) {
    requireField(Array.isArray(keys), `genesis role ${role}`, "must be a list of keys");
    const unique = new Map(keys.map((key) => {
      const bytes = parseKey(key, `role ${role} key`);
      return [toHex(bytes), bytes];
    }));
    value.set(role, [...unique.values()].sort(compareBytes));
  }
  return value;
}

function parseAgencies(agencies) {
  checkFields(agencies, ["version", "members"], "genesis agencies");
  requireField(field(agencies, "version") === AGENCIES_VERSION, "agencies version", "must be 1");
  const members = field(agencies, "members");
  requireField(Array.isArray(members), "agencies members", "must be a list");
  return members.map((member) => {
    checkFields(member, ["name", "public_key"], "agency member");
    const name = field(member, "name");
    requireField(typeof name === "string", "agency name", "must be text");
    return { name, publicKey: parseKey(field(member, "public_key"), "agency public_key") };
  });
}

export function getAgencyName(genesis, publicKey) {
  const agency = genesis.agencies.find((member) => equalBytes(member.publicKey, publicKey));
  return agency === undefined ? null : agency.name;
}

export function computeBlockId(header) {
  return sha256(header.bytes);
}

export { utf8 };
