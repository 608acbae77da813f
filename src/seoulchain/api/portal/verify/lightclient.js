// The light client's header rules (docs/spec/proofs.md §2–§3): trusted states, the
// adjacent and skipping rules, and the checkpoint's own check.

import { equalBytes, sha256, toHex } from "./bytes.js";
import { VerificationError, verifyCommit } from "./ledger.js";

// proofs.md §3: the default trust level of the skipping rule, 1/3 as CometBFT.
export const DEFAULT_TRUST_LEVEL = { numerator: 1n, denominator: 3n };

export class InsufficientTrust extends VerificationError {
  constructor(message) {
    super(message);
    this.name = "InsufficientTrust";
  }
}

export async function computeValidatorsHash(validatorSet) {
  return sha256(validatorSet.bytes);
}

export async function makeGenesisTrust(genesis) {
  return { chainId: genesis.chainId, height: 0n, blockId: new Uint8Array(0), timeMs: genesis.timeMs,
    validators: genesis.validatorSet, nextValidatorsHash: await computeValidatorsHash(genesis.validatorSet) };
}

export function makeTrustedState(block, chainId) {
  return { chainId, height: block.header.height, blockId: block.blockId, timeMs: block.header.timeMs,
    validators: block.validators, nextValidatorsHash: block.header.nextValidatorsHash };
}

export async function checkLightBlock(block, chainId) {
  const { header } = block;
  if (header.chainId !== chainId) {
    throw new VerificationError(`header ${header.height} is for chain ${JSON.stringify(header.chainId)}, `
      + `not ${JSON.stringify(chainId)}`);
  }
  if (!equalBytes(await computeValidatorsHash(block.validators), header.validatorsHash)) {
    throw new VerificationError(`the validator set given for height ${header.height} does not hash to `
      + "the header's validators_hash");
  }
  await verifyCommit(chainId, block.validators, block.commit, block.blockId, header.height);
}

function checkProgress(trusted, block) {
  const { header } = block;
  if (header.height <= trusted.height) {
    throw new VerificationError(`header ${header.height} is not above the trusted height ${trusted.height}`);
  }
  if (header.timeMs <= trusted.timeMs) {
    throw new VerificationError(`header ${header.height} time ${header.timeMs} is not after the trusted `
      + `time ${trusted.timeMs}`);
  }
}

async function verifyAdjacent(trusted, block) {
  const { header } = block;
  if (!equalBytes(header.prevBlockId, trusted.blockId)) {
    throw new VerificationError(`header ${header.height} does not link to the trusted block `
      + `${toHex(trusted.blockId) || "(genesis)"}`);
  }
  if (!equalBytes(header.validatorsHash, trusted.nextValidatorsHash)) {
    throw new VerificationError(`header ${header.height} names validators ${toHex(header.validatorsHash)}, `
      + `but the trusted header named ${toHex(trusted.nextValidatorsHash)} for it`);
  }
  await checkLightBlock(block, trusted.chainId);
}

async function verifySkipping(trusted, block, trustLevel) {
  await checkLightBlock(block, trusted.chainId);
  let signed = 0n;
  for (const { publicKey } of block.commit.signatures) {
    signed += trusted.validators.powers.get(toHex(publicKey)) ?? 0n;
  }
  const total = trusted.validators.totalPower;
  if (!(signed * trustLevel.denominator > total * trustLevel.numerator)) {
    throw new InsufficientTrust(`header ${block.header.height}: the trusted set of height ${trusted.height} `
      + `holds ${signed} of ${total} power among its signers, not more than `
      + `${trustLevel.numerator}/${trustLevel.denominator}`);
  }
}

export async function verifyLightBlock(trusted, block, trustLevel = DEFAULT_TRUST_LEVEL) {
  checkProgress(trusted, block);
  if (block.header.height === trusted.height + 1n) await verifyAdjacent(trusted, block);
  else if (trustLevel === null) {
    throw new VerificationError(`header ${block.header.height} does not follow the trusted height `
      + `${trusted.height}, and skipping is not allowed`);
  } else await verifySkipping(trusted, block, trustLevel);
  return makeTrustedState(block, trusted.chainId);
}
