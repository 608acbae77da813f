// Bundles of a chain run under CometBFT (docs/spec/proofs.md §13): CometBFT signed headers
// from the genesis validators, or from a checkpoint header the user trusts by its height and
// hash, verified by CometBFT's light client rules, prove the seoulchain header whose block id
// is the last signed header's app hash.
//
// Hashes and sign bytes are built from proto3 encodings written here (a format, not a
// crypto primitive): varints, tags, length-delimited fields, and RFC 6962 Merkle roots.

import { DecodeError, compareBytes } from "./cbor.js";
import { concatBytes, equalBytes, fromBase64, fromHex, sha256, toHex, utf8 } from "./bytes.js";
import { TX_BYTES_MAX, VerificationError, decodeHeader } from "./ledger.js";
import { isValidSignature } from "./ed25519.js";

const ADDRESS_BYTES = 20;
const HASH_BYTES = 32;
const FLAG_ABSENT = 1n;
const FLAG_COMMIT = 2n;
const FLAG_NIL = 3n;
const PRECOMMIT_TYPE = 2n;
// CometBFT's MaxTotalVotingPower bounds a set far below this; §13 allows 1 … 10,000.
const VALIDATORS_MAX = 10000;
const CHAIN_ID_CHARS_MAX = 50;
const INT64_MAX = 2n ** 63n - 1n;
const NS_PER_MS = 1000000n;
const NS_PER_S = 1000000000n;
// proofs.md §10, as for seoulchain light blocks.
const LIGHT_BLOCKS_MAX = 256;
const HEADER_HASH_FIELDS = ["last_commit_hash", "data_hash", "validators_hash", "next_validators_hash",
  "consensus_hash", "app_hash", "last_results_hash", "evidence_hash", "proposer_address"];
const HEADER_FIELDS = ["version_block", "version_app", "chain_id", "height", "time_ns", "last_block_id",
  ...HEADER_HASH_FIELDS];

// ---------------------------------------------------------------------------- protobuf

function varint(value) {
  const out = [];
  let rest = BigInt(value);
  for (;;) {
    const byte = Number(rest & 0x7fn);
    rest >>= 7n;
    if (rest === 0n) {
      out.push(byte);
      return Uint8Array.from(out);
    }
    out.push(byte | 0x80);
  }
}

const tag = (number, wireType) => varint((BigInt(number) << 3n) | BigInt(wireType));
const varintField = (number, value) => (BigInt(value) === 0n ? new Uint8Array(0) : concatBytes(tag(number, 0), varint(value)));
const messageField = (number, body) => concatBytes(tag(number, 2), varint(body.length), body);
const bytesField = (number, value) => (value.length === 0 ? new Uint8Array(0) : messageField(number, value));

function sfixed64Field(number, value) {
  if (BigInt(value) === 0n) return new Uint8Array(0);
  const bytes = new Uint8Array(8);
  let rest = BigInt.asUintN(64, BigInt(value));
  for (let index = 0; index < 8; index += 1) {
    bytes[index] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  return concatBytes(tag(number, 1), bytes);
}

function timestamp(timeNs) {
  return concatBytes(varintField(1, timeNs / NS_PER_S), varintField(2, timeNs % NS_PER_S));
}

function encodeBlockId(blockId) {
  const parts = concatBytes(varintField(1, blockId.partsTotal), bytesField(2, blockId.partsHash));
  return concatBytes(bytesField(1, blockId.hash), messageField(2, parts));
}

async function merkleRoot(items) {
  if (items.length === 0) return sha256(new Uint8Array(0));
  if (items.length === 1) return sha256(concatBytes(Uint8Array.of(0), items[0]));
  let split = 1;
  while (split * 2 < items.length) split *= 2;
  const left = await merkleRoot(items.slice(0, split));
  const right = await merkleRoot(items.slice(split));
  return sha256(concatBytes(Uint8Array.of(1), left, right));
}

function headerHash(header) {
  const version = concatBytes(varintField(1, header.versionBlock), varintField(2, header.versionApp));
  return merkleRoot([version, bytesField(1, utf8(header.chainId)), varintField(1, header.height),
    timestamp(header.timeNs), encodeBlockId(header.lastBlockId),
    ...HEADER_HASH_FIELDS.map((name) => bytesField(1, header.hashes[name]))]);
}

function validatorsHash(validators) {
  return merkleRoot(validators.map((validator) => concatBytes(
    messageField(1, bytesField(1, validator.publicKey)), varintField(2, validator.power))));
}

function voteSignBytes(chainId, commit, index) {
  const sig = commit.signatures[index];
  const blockId = sig.flag === FLAG_COMMIT ? messageField(4, encodeBlockId(commit.blockId)) : new Uint8Array(0);
  const vote = concatBytes(varintField(1, PRECOMMIT_TYPE), sfixed64Field(2, commit.height), sfixed64Field(3, commit.round),
    blockId, messageField(5, timestamp(sig.timeNs)), bytesField(6, utf8(chainId)));
  return concatBytes(varint(vote.length), vote);
}

// ------------------------------------------------------------------------------ parsing

function requireMap(value, name, keys) {
  if (!(value instanceof Map)) throw new DecodeError(`${name} must be a JSON object`);
  const missing = keys.filter((key) => !value.has(key));
  const extra = [...value.keys()].filter((key) => !keys.includes(key));
  if (missing.length > 0 || extra.length > 0) {
    throw new DecodeError(`${name} fields are wrong (missing ${JSON.stringify(missing)}, unknown ${JSON.stringify(extra)})`);
  }
  return value;
}

function int64(value, name, minimum = 0n) {
  if (typeof value !== "bigint" || value < minimum || value > INT64_MAX) {
    throw new DecodeError(`${name} must be an integer from ${minimum} to 2^63 - 1`);
  }
  return value;
}

function hexOf(value, name, sizes = [0, HASH_BYTES]) {
  const bytes = fromHex(value, name);
  if (!sizes.includes(bytes.length)) throw new DecodeError(`${name} must be ${sizes.join(" or ")} bytes`);
  return bytes;
}

function parseBlockId(value, name) {
  requireMap(value, name, ["hash", "parts_total", "parts_hash"]);
  return { hash: hexOf(value.get("hash"), `${name} hash`), partsTotal: int64(value.get("parts_total"), `${name} parts_total`),
    partsHash: hexOf(value.get("parts_hash"), `${name} parts_hash`) };
}

function parseHeader(value, name) {
  requireMap(value, `${name} header`, HEADER_FIELDS);
  const chainId = value.get("chain_id");
  if (typeof chainId !== "string" || chainId.length === 0 || chainId.length > CHAIN_ID_CHARS_MAX) {
    throw new DecodeError(`${name} chain_id must be a text of 1..${CHAIN_ID_CHARS_MAX} chars`);
  }
  const hashes = Object.fromEntries(HEADER_HASH_FIELDS.map((field) => [field,
    hexOf(value.get(field), field, field === "proposer_address" ? [ADDRESS_BYTES] : [0, HASH_BYTES])]));
  return { versionBlock: int64(value.get("version_block"), "version_block"),
    versionApp: int64(value.get("version_app"), "version_app"), chainId,
    height: int64(value.get("height"), "height", 1n), timeNs: int64(value.get("time_ns"), "time_ns"),
    lastBlockId: parseBlockId(value.get("last_block_id"), `${name} last_block_id`), hashes };
}

function parseCommit(value, name) {
  requireMap(value, name, ["height", "round", "block_id", "signatures"]);
  const raw = value.get("signatures");
  if (!Array.isArray(raw) || raw.length > VALIDATORS_MAX) {
    throw new DecodeError(`${name} signatures must be a list of at most ${VALIDATORS_MAX} items`);
  }
  const signatures = raw.map((item) => {
    requireMap(item, `${name} signature`, ["flag", "validator_address", "time_ns", "signature"]);
    const flag = int64(item.get("flag"), "signature flag", FLAG_ABSENT);
    if (![FLAG_ABSENT, FLAG_COMMIT, FLAG_NIL].includes(flag)) throw new DecodeError(`signature flag ${flag} is not 1 (absent), 2 or 3`);
    const absent = flag === FLAG_ABSENT;
    return { flag, address: hexOf(item.get("validator_address"), "validator_address", [absent ? 0 : ADDRESS_BYTES]),
      timeNs: int64(item.get("time_ns"), "signature time_ns"),
      signature: hexOf(item.get("signature"), "signature", [absent ? 0 : 64]) };
  });
  return { height: int64(value.get("height"), "commit height", 1n), round: int64(value.get("round"), "commit round"),
    blockId: parseBlockId(value.get("block_id"), `${name} block_id`), signatures };
}

async function makeValidatorSet(members) {
  const validators = [];
  for (const { publicKey, power } of members) {
    validators.push({ publicKey, power, address: (await sha256(publicKey)).slice(0, ADDRESS_BYTES) });
  }
  return validators;
}

function compareCometOrder(left, right) {
  if (left.power !== right.power) return left.power > right.power ? -1 : 1;
  return compareBytes(left.address, right.address);
}

async function parseValidators(value, name) {
  if (!Array.isArray(value) || value.length < 1 || value.length > VALIDATORS_MAX) {
    throw new DecodeError(`a validator set has 1..${VALIDATORS_MAX} members`);
  }
  const validators = await makeValidatorSet(value.map((item) => {
    requireMap(item, `${name} validator`, ["public_key", "power"]);
    return { publicKey: hexOf(item.get("public_key"), "public_key", [32]), power: int64(item.get("power"), "power", 1n) };
  }));
  for (let index = 1; index < validators.length; index += 1) {
    if (compareCometOrder(validators[index - 1], validators[index]) >= 0
      || validators.slice(0, index).some((other) => equalBytes(other.address, validators[index].address))) {
      throw new DecodeError("validators must be in CometBFT's order (power descending, then address) without duplicates");
    }
  }
  return validators;
}

async function parseLightBlock(value, name) {
  requireMap(value, name, ["header", "commit", "validators"]);
  return { header: parseHeader(value.get("header"), name), commit: parseCommit(value.get("commit"), `${name} commit`),
    validators: await parseValidators(value.get("validators"), name) };
}

// ---------------------------------------------------------------------------- verifying

const totalPower = (validators) => validators.reduce((total, validator) => total + validator.power, 0n);

async function checkSignature(chainId, commit, index, publicKey) {
  if (!(await isValidSignature(publicKey, voteSignBytes(chainId, commit, index), commit.signatures[index].signature))) {
    throw new VerificationError(`the signature of commit entry ${index} (validator `
      + `${toHex((await sha256(publicKey)).slice(0, ADDRESS_BYTES))}) does not verify`);
  }
}

async function verifyCommit(chainId, validators, commit, blockHash) {
  if (!equalBytes(commit.blockId.hash, blockHash)) {
    throw new VerificationError(`the commit of height ${commit.height} is for block ${toHex(commit.blockId.hash)}, not ${toHex(blockHash)}`);
  }
  if (commit.signatures.length !== validators.length) {
    throw new VerificationError(`the commit has ${commit.signatures.length} entries for ${validators.length} validators`);
  }
  let signed = 0n;
  for (const [index, validator] of validators.entries()) {
    const sig = commit.signatures[index];
    if (sig.flag !== FLAG_COMMIT) continue;
    if (!equalBytes(sig.address, validator.address)) {
      throw new VerificationError(`commit entry ${index} is by ${toHex(sig.address)}, not validator ${toHex(validator.address)}`);
    }
    await checkSignature(chainId, commit, index, validator.publicKey);
    signed += validator.power;
  }
  if (3n * signed <= 2n * totalPower(validators)) {
    throw new VerificationError(`the commit of height ${commit.height} carries ${signed} of ${totalPower(validators)} power, not more than 2/3`);
  }
}

async function computeTrustedPower(chainId, trusted, commit) {
  const seen = new Set();
  let signed = 0n;
  for (const [index, sig] of commit.signatures.entries()) {
    const validator = trusted.find((member) => equalBytes(member.address, sig.address));
    if (sig.flag !== FLAG_COMMIT || validator === undefined) continue;
    if (seen.has(toHex(sig.address))) throw new VerificationError(`validator ${toHex(sig.address)} signs the commit twice`);
    seen.add(toHex(sig.address));
    await checkSignature(chainId, commit, index, validator.publicKey);
    signed += validator.power;
  }
  return signed;
}

async function verifySignedHeader(trusted, block, trustLevel) {
  const { header, commit } = block;
  if (header.chainId !== trusted.chainId) throw new VerificationError(`header ${header.height} is of chain ${JSON.stringify(header.chainId)}`);
  if (header.height <= trusted.height || commit.height !== header.height) {
    throw new VerificationError(`header ${header.height} (commit ${commit.height}) does not follow the trusted height ${trusted.height}`);
  }
  if (header.timeNs < trusted.timeNs || (trusted.height > 0n && header.timeNs === trusted.timeNs)) {
    throw new VerificationError(`header ${header.height}'s time is not after the trusted header's`);
  }
  if (!equalBytes(await validatorsHash(block.validators), header.hashes.validators_hash)) {
    throw new VerificationError(`the validator set does not hash to header ${header.height}'s validators_hash`);
  }
  await verifyCommit(header.chainId, block.validators, commit, await headerHash(header));
  if (header.height === trusted.height + 1n) {
    if (!equalBytes(header.hashes.validators_hash, trusted.nextValidatorsHash)) {
      throw new VerificationError(`header ${header.height}'s validators_hash is not the trusted next_validators_hash`);
    }
  } else {
    if (trustLevel === null) throw new VerificationError("skipping is not allowed");
    const signed = await computeTrustedPower(trusted.chainId, trusted.validators, commit);
    const total = totalPower(trusted.validators);
    if (!(signed * trustLevel.denominator > total * trustLevel.numerator)) {
      throw new VerificationError(`header ${header.height}: the trusted set of height ${trusted.height} holds ${signed} of `
        + `${total} power among its signers, not more than ${trustLevel.numerator}/${trustLevel.denominator}`);
    }
  }
  return { chainId: trusted.chainId, height: header.height, timeNs: header.timeNs, validators: block.validators,
    nextValidatorsHash: header.hashes.next_validators_hash };
}

async function makeGenesisState(genesis) {
  const validators = (await makeValidatorSet(genesis.validatorSet.validators)).sort(compareCometOrder);
  return { chainId: genesis.chainId, height: 0n, timeNs: genesis.timeMs * NS_PER_MS, validators,
    nextValidatorsHash: await validatorsHash(validators) };
}

/** Trust a signed header the user named by height and hash (a checkpoint), as CometBFT's
 * light client initialises from trust options: its set hashes to the header's
 * `validators_hash` and more than 2/3 of that set signed its commit. */
async function trustCheckpoint(chainId, block) {
  const { header, commit } = block;
  if (header.chainId !== chainId) {
    throw new VerificationError(`header ${header.height} is of chain ${JSON.stringify(header.chainId)}, not ${JSON.stringify(chainId)}`);
  }
  if (commit.height !== header.height) throw new VerificationError(`the commit is of height ${commit.height}, not ${header.height}`);
  if (!equalBytes(await validatorsHash(block.validators), header.hashes.validators_hash)) {
    throw new VerificationError(`the validator set does not hash to header ${header.height}'s validators_hash`);
  }
  await verifyCommit(chainId, block.validators, commit, await headerHash(header));
  return { chainId, height: header.height, timeNs: header.timeNs, validators: block.validators,
    nextValidatorsHash: header.hashes.next_validators_hash };
}

/** The first signed header is the trusted checkpoint `{height, blockId}`: its height and
 * header hash; then it is trusted as a checkpoint. */
async function checkCometCheckpoint(block, checkpoint, chainId) {
  if (block.header.height !== checkpoint.height || !equalBytes(await headerHash(block.header), checkpoint.blockId)) {
    throw new VerificationError("the first signed header is not the trusted checkpoint");
  }
  return trustCheckpoint(chainId, block);
}

async function checkAppHeader(value, block, genesis) {
  const header = decodeHeader(fromBase64(value, "cometbft header", TX_BYTES_MAX));
  if (header.chainId !== genesis.chainId) throw new VerificationError(`the header is of chain ${JSON.stringify(header.chainId)}`);
  if (header.height + 1n !== block.header.height) {
    throw new VerificationError(`the header is of height ${header.height}; the last signed header (${block.header.height}) `
      + `proves height ${block.header.height - 1n}`);
  }
  const blockId = await sha256(header.bytes);
  if (!equalBytes(blockId, block.header.hashes.app_hash)) {
    throw new VerificationError(`the header's block id ${toHex(blockId)} is not the app hash `
      + `${toHex(block.header.hashes.app_hash)} of signed header ${block.header.height}`);
  }
  return header;
}

/** Verify a bundle's `cometbft` section from the genesis validators, or from its first
 * signed header when `checkpoint` (`{height, blockId}`, the one the user trusts) is given;
 * return the seoulchain header it proves. `step` runs one named step and turns its failure
 * into a BundleError. */
export async function verifyCometCertificate(section, genesis, trustLevel, step, checkpoint = null) {
  const fields = await step("cometbft", () => requireMap(section, "cometbft", ["light_blocks", "header"]));
  const raw = await step("cometbft", () => {
    const blocks = fields.get("light_blocks");
    if (!Array.isArray(blocks) || blocks.length > LIGHT_BLOCKS_MAX) {
      throw new DecodeError(`cometbft light_blocks must be a list of at most ${LIGHT_BLOCKS_MAX} items`);
    }
    if (blocks.length === 0) throw new DecodeError("the bundle carries no CometBFT signed header");
    return blocks;
  });
  let trusted = await makeGenesisState(genesis);
  let block = null;
  let start = 0;
  if (checkpoint !== null) {
    const name = "cometbft light block 1";
    block = await step(name, () => parseLightBlock(raw[0], name));
    const first = block;
    trusted = await step(name, () => checkCometCheckpoint(first, checkpoint, genesis.chainId));
    start = 1;
  }
  for (let position = start; position < raw.length; position += 1) {
    const name = `cometbft light block ${position + 1}`;
    const parsed = await step(name, () => parseLightBlock(raw[position], name));
    const current = trusted;
    trusted = await step(`${name} (height ${parsed.header.height})`, () => verifySignedHeader(current, parsed, trustLevel));
    block = parsed;
  }
  return step("cometbft header", () => checkAppHeader(fields.get("header"), block, genesis));
}
