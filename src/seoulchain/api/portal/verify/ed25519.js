// Ed25519 signature checks as strict as libsodium's (docs/spec/ledger.md §4), by WebCrypto.
//
// WebCrypto verifies the RFC 8032 equation. libsodium, which the reference implementation
// uses, also rejects a signature whose S is not below the group order L, a public key that
// is not canonically encoded, and a public key or R of small order; those checks are made
// here on the encodings, before WebCrypto is asked, so both implementations accept the
// same signatures.

const PUBLIC_KEY_BYTES = 32;
const SIGNATURE_BYTES = 64;
// The group order L and the field prime p (RFC 8032 §5.1).
const GROUP_ORDER = 2n ** 252n + 27742317777372353535851937790883648493n;
const FIELD_PRIME = 2n ** 255n - 19n;
// libsodium's small-order blocklist (ge25519_has_small_order): the encodings of the points of
// order 1, 2, 4 and 8 and their non-canonical spellings, compared without the sign bit.
const SMALL_ORDER_HEX = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
];

function littleEndian(bytes) {
  let value = 0n;
  for (let index = bytes.length - 1; index >= 0; index -= 1) value = (value << 8n) | BigInt(bytes[index]);
  return value;
}

function hasSmallOrder(point) {
  const hex = Array.from(point, (byte, index) => (index === 31 ? byte & 0x7f : byte)
    .toString(16).padStart(2, "0")).join("");
  return SMALL_ORDER_HEX.includes(hex);
}

function isCanonicalPoint(point) {
  const unsigned = point.slice();
  unsigned[31] &= 0x7f;
  return littleEndian(unsigned) < FIELD_PRIME;
}

export function isStrictEncoding(publicKey, signature) {
  return publicKey.length === PUBLIC_KEY_BYTES && signature.length === SIGNATURE_BYTES
    && littleEndian(signature.subarray(32)) < GROUP_ORDER
    && !hasSmallOrder(signature.subarray(0, 32))
    && isCanonicalPoint(publicKey) && !hasSmallOrder(publicKey);
}

export async function isValidSignature(publicKey, message, signature) {
  if (!isStrictEncoding(publicKey, signature)) return false;
  try {
    const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    return await crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
  } catch {
    return false;
  }
}
