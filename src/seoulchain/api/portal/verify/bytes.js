// Byte helpers: strict hex and base64 texts (docs/spec/proofs.md §5), base58btc (the
// multibase 'z' text of Data Integrity proof values and Multikey keys), SHA-256 by WebCrypto.

import { DecodeError } from "./cbor.js";

const HEX_PATTERN = /^(?:[0-9a-f]{2})*$/;
const BASE64_PATTERN = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const UTF8_ENCODER = new TextEncoder();
// The Bitcoin base58 alphabet (draft-msporny-base58 §2), as Python's `base58` package uses.
const BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

export function toHex(bytes) {
  let text = "";
  for (const byte of bytes) text += byte.toString(16).padStart(2, "0");
  return text;
}

export function fromHex(text, name, size) {
  if (typeof text !== "string") throw new DecodeError(`${name} must be hex text`);
  if (!HEX_PATTERN.test(text)) throw new DecodeError(`${name} is not lower-case hex without spaces`);
  const bytes = new Uint8Array(text.length / 2);
  for (let index = 0; index < bytes.length; index += 1) {
    bytes[index] = parseInt(text.slice(2 * index, 2 * index + 2), 16);
  }
  if (size !== undefined && bytes.length !== size) {
    throw new DecodeError(`${name} must be ${size} bytes, got ${bytes.length}`);
  }
  return bytes;
}

export function toBase64(bytes) {
  let binary = "";
  const chunk = 0x8000;
  for (let start = 0; start < bytes.length; start += chunk) {
    binary += String.fromCharCode(...bytes.subarray(start, start + chunk));
  }
  return btoa(binary);
}

export function fromBase64(text, name, bytesMax) {
  if (typeof text !== "string" || text.length > 4 * (Math.floor(bytesMax / 3) + 1)) {
    throw new DecodeError(`${name} must be base64 text of at most ${bytesMax} bytes`);
  }
  if (!BASE64_PATTERN.test(text)) throw new DecodeError(`${name} is not valid base64`);
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let index = 0; index < binary.length; index += 1) bytes[index] = binary.charCodeAt(index);
  // Unused low bits of the last character must be zero: one text per value.
  if (toBase64(bytes) !== text) throw new DecodeError(`${name} is not canonical base64`);
  return bytes;
}

export function toBase58(bytes) {
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  let text = "";
  while (value > 0n) {
    text = BASE58_ALPHABET[Number(value % 58n)] + text;
    value /= 58n;
  }
  const zeros = bytes.findIndex((byte) => byte !== 0);
  return "1".repeat(zeros === -1 ? bytes.length : zeros) + text;
}

export function fromBase58(text, name, bytesMax) {
  // A leading "1" is a zero byte; the rest is a big-endian number in base 58.
  if (typeof text !== "string" || text.length > 2 * bytesMax) {
    throw new DecodeError(`${name} must be base58btc text of at most ${bytesMax} bytes`);
  }
  let value = 0n;
  for (const char of text) {
    const digit = BASE58_ALPHABET.indexOf(char);
    if (digit === -1) throw new DecodeError(`${name} is not base58btc text`);
    value = value * 58n + BigInt(digit);
  }
  const digits = [];
  for (; value > 0n; value >>= 8n) digits.unshift(Number(value & 255n));
  const zeros = /^1*/.exec(text)[0].length;
  return Uint8Array.from([...new Array(zeros).fill(0), ...digits]);
}

export function utf8(text) {
  return UTF8_ENCODER.encode(text);
}

export function concatBytes(...parts) {
  const out = new Uint8Array(parts.reduce((total, part) => total + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export function equalBytes(left, right) {
  if (left.length !== right.length) return false;
  for (let index = 0; index < left.length; index += 1) if (left[index] !== right[index]) return false;
  return true;
}

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}
