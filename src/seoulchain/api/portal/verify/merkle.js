// Merkle proofs: RFC 9162 inclusion (docs/spec/logtree.md §4.2, §6) and the sparse Merkle
// state tree's proofs (docs/spec/state-tree.md §6–§7).

import { DecodeError, decodeCbor } from "./cbor.js";
import { concatBytes, equalBytes, sha256, toHex } from "./bytes.js";
import { VerificationError, isBytes, isUint } from "./ledger.js";

const HASH_BYTES = 32;
const UINT64_MAX = 2n ** 64n - 1n;
// state-tree.md §9: a leaf and 256 listed siblings.
export const STATE_PROOF_BYTES_MAX = 8815;
// state-tree.md §6: one sibling per bit of a 256-bit path.
const PROOF_DEPTH_MAX = 256n;
const EMPTY_HASH = new Uint8Array(HASH_BYTES);
const LEAF_PREFIX = Uint8Array.of(0x00);
const NODE_PREFIX = Uint8Array.of(0x01);

export function computeLeafHash(data) {
  return sha256(concatBytes(LEAF_PREFIX, data));
}

function computeNodeHash(left, right) {
  return sha256(concatBytes(NODE_PREFIX, left, right));
}

function bitLength(value) {
  return value === 0n ? 0 : value.toString(2).length;
}

function popCount(value) {
  return [...value.toString(2)].filter((digit) => digit === "1").length;
}

export function computeInclusionProofLength(index, size) {
  const inner = bitLength(index ^ (size - 1n));
  return inner + popCount(index >> BigInt(inner));
}

export async function verifyInclusion(leafHash, index, size, proof, root) {
  if (!(isUint(index) && isUint(size) && index < size && size <= UINT64_MAX)) {
    throw new VerificationError(`leaf index ${index} is not inside a tree of size ${size}`);
  }
  const expected = computeInclusionProofLength(index, size);
  if (proof.length !== expected) {
    throw new VerificationError(`an inclusion proof of leaf ${index} in a tree of size ${size} `
      + `has ${expected} hashes, not ${proof.length}`);
  }
  let fn = index;
  let sn = size - 1n;
  let hash = leafHash;
  for (const sibling of proof) {
    if (sn === 0n) throw new VerificationError("inclusion proof too long");
    if ((fn & 1n) === 1n || fn === sn) {
      hash = await computeNodeHash(sibling, hash);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      hash = await computeNodeHash(hash, sibling);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n || !equalBytes(hash, root)) {
    throw new VerificationError(`inclusion proof of leaf ${index} in a tree of size ${size} leads to `
      + `root ${toHex(hash)}, not ${toHex(root)}`);
  }
}

export function decodeStateProof(bytes) {
  const items = decodeCbor(bytes, STATE_PROOF_BYTES_MAX);
  if (!Array.isArray(items) || items.length !== 5) throw new DecodeError("a state proof is an array of 5 items");
  const [version, leaf, depth, bitmap, listed] = items;
  if (version !== 1n) throw new DecodeError("state proof version must be 1");
  if (!(leaf === null || (Array.isArray(leaf) && leaf.length === 2 && isBytes(leaf[0], 32) && isBytes(leaf[1], 32)))) {
    throw new DecodeError("state proof leaf must be null or two 32-byte hashes");
  }
  if (!(isUint(depth) && depth <= PROOF_DEPTH_MAX)) throw new DecodeError("state proof depth must be 0 to 256");
  const depthBits = Number(depth);
  if (!isBytes(bitmap, Math.ceil(depthBits / 8))) throw new DecodeError("state proof bitmap has the wrong length");
  if (!Array.isArray(listed)) throw new DecodeError("state proof siblings must be a list");
  const siblings = [];
  let next = 0;
  for (let bit = 0; bit < 8 * bitmap.length; bit += 1) {
    const set = (bitmap[bit >> 3] & (0x80 >> (bit & 7))) !== 0;
    if (bit >= depthBits) {
      if (set) throw new DecodeError("state proof bitmap has a padding bit set");
      continue;
    }
    if (!set) {
      siblings.push(EMPTY_HASH);
      continue;
    }
    const sibling = listed[next++];
    if (!isBytes(sibling, 32) || equalBytes(sibling, EMPTY_HASH)) {
      throw new DecodeError("a listed state proof sibling must be a non-empty 32-byte hash");
    }
    siblings.push(sibling);
  }
  if (next !== listed.length) throw new DecodeError("state proof sibling list does not match its bitmap");
  return { leaf: leaf === null ? null : { keyHash: leaf[0], valueHash: leaf[1] }, siblings };
}

function getPathBit(keyHash, index) {
  return (keyHash[index >> 3] >> (7 - (index & 7))) & 1;
}

function sharesPrefix(left, right, bits) {
  for (let index = 0; index < bits; index += 1) {
    if (getPathBit(left, index) !== getPathBit(right, index)) return false;
  }
  return true;
}

export async function verifyStateProof(root, key, value, proofBytes) {
  const { leaf, siblings } = decodeStateProof(proofBytes);
  const depth = siblings.length;
  if (depth > 0 && equalBytes(siblings[0], EMPTY_HASH)) {
    throw new VerificationError("state proof is not canonical: its deepest sibling is empty");
  }
  const keyHash = await sha256(key);
  if (value !== null) {
    const valueHash = await sha256(value);
    if (leaf === null || !equalBytes(leaf.keyHash, keyHash) || !equalBytes(leaf.valueHash, valueHash)) {
      throw new VerificationError("the proof does not end in this key's leaf with this value's hash");
    }
  } else if (leaf !== null && (equalBytes(leaf.keyHash, keyHash) || !sharesPrefix(leaf.keyHash, keyHash, depth))) {
    throw new VerificationError("the proof does not show this key absent: it ends in the key's own leaf "
      + "or in a leaf off its path");
  }
  let hash = leaf === null ? EMPTY_HASH : await sha256(concatBytes(LEAF_PREFIX, leaf.keyHash, leaf.valueHash));
  for (let index = 0; index < depth; index += 1) {
    hash = getPathBit(keyHash, depth - 1 - index) === 1
      ? await computeNodeHash(siblings[index], hash)
      : await computeNodeHash(hash, siblings[index]);
  }
  if (!equalBytes(hash, root)) {
    throw new VerificationError(`the state proof leads to root ${toHex(hash)}, not the header's ${toHex(root)}`);
  }
}
