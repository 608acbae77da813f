// Deterministic CBOR (docs/spec/ledger.md §2): a strict decoder and an encoder.
//
// Theory of operation. The decoder accepts an input if and only if it is the deterministic
// encoding of one value of the ledger's data model: integers, byte and text strings,
// arrays, maps with text keys, false, true and null. It checks canonical form while it
// parses (shortest heads, definite lengths, map keys strictly ascending by their encoded
// bytes, valid UTF-8, depth at most 32, nothing after the item), so decode-then-encode is
// the identity without re-encoding. Integers decode to BigInt, byte strings to Uint8Array,
// maps to Map. Any rejection throws DecodeError; nothing else is thrown, whatever the input.

export class DecodeError extends Error {
  constructor(message) {
    super(message);
    this.name = "DecodeError";
  }
}

// ledger.md §2.1: the top-level item has depth 0 and every item has depth <= 32.
const DEPTH_MAX = 32;
// The smallest argument each head width may carry (ledger.md §2.2, shortest head).
const HEAD_MINIMUM = [24n, 256n, 65536n, 2n ** 32n];
const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const UTF8_ENCODER = new TextEncoder();

export function decodeCbor(bytes, bytesMax) {
  if (!(bytes instanceof Uint8Array)) throw new DecodeError("CBOR input must be bytes");
  if (bytesMax !== undefined && bytes.length > bytesMax) {
    throw new DecodeError(`CBOR input of ${bytes.length} bytes is over the limit of ${bytesMax}`);
  }
  const reader = { bytes, position: 0 };
  const value = readItem(reader, 0);
  if (reader.position !== bytes.length) throw new DecodeError("bytes after the first CBOR item");
  return value;
}

function take(reader, count) {
  if (count > reader.bytes.length - reader.position) throw new DecodeError("truncated CBOR item");
  const start = reader.position;
  reader.position += count;
  return reader.bytes.subarray(start, reader.position);
}

function readHead(reader) {
  const initial = take(reader, 1)[0];
  const major = initial >> 5;
  const info = initial & 0x1f;
  if (major === 7) return { major, info, argument: BigInt(info) };
  if (info < 24) return { major, info, argument: BigInt(info) };
  if (info === 31) throw new DecodeError("indefinite lengths are not deterministic CBOR");
  if (info > 27) throw new DecodeError(`reserved additional information ${info}`);
  let argument = 0n;
  for (const byte of take(reader, 1 << (info - 24))) argument = (argument << 8n) | BigInt(byte);
  if (argument < HEAD_MINIMUM[info - 24]) throw new DecodeError("non-shortest CBOR head");
  return { major, info, argument };
}

function readLength(reader, argument, minimumItemBytes) {
  // Every item takes at least one byte, so a length above what is left is truncated input.
  if (argument * BigInt(minimumItemBytes) > BigInt(reader.bytes.length - reader.position)) {
    throw new DecodeError("truncated CBOR item");
  }
  return Number(argument);
}

function readItem(reader, depth) {
  if (depth > DEPTH_MAX) throw new DecodeError(`CBOR nesting deeper than ${DEPTH_MAX}`);
  const { major, info, argument } = readHead(reader);
  switch (major) {
    case 0: return argument;
    case 1: return -1n - argument;
    case 2: return take(reader, readLength(reader, argument, 1)).slice();
    case 3: return readText(take(reader, readLength(reader, argument, 1)));
    case 4: return readArray(reader, readLength(reader, argument, 1), depth);
    case 5: return readMap(reader, readLength(reader, argument, 2), depth);
    case 6: throw new DecodeError("CBOR tags are not in the data model");
    default: return readSimple(info);
  }
}

function readText(bytes) {
  try {
    return UTF8.decode(bytes);
  } catch {
    throw new DecodeError("invalid UTF-8 in a CBOR text string");
  }
}

function readArray(reader, count, depth) {
  const items = [];
  for (let index = 0; index < count; index += 1) items.push(readItem(reader, depth + 1));
  return items;
}

function readMap(reader, count, depth) {
  const map = new Map();
  let previousKey = null;
  for (let index = 0; index < count; index += 1) {
    const start = reader.position;
    const head = readHead(reader);
    if (head.major !== 3) throw new DecodeError("CBOR map keys must be text strings");
    const key = readText(take(reader, readLength(reader, head.argument, 1)));
    const encodedKey = reader.bytes.subarray(start, reader.position);
    if (previousKey !== null && compareBytes(previousKey, encodedKey) >= 0) {
      throw new DecodeError("CBOR map keys are not strictly ascending (unsorted or duplicate)");
    }
    previousKey = encodedKey;
    map.set(key, readItem(reader, depth + 1));
  }
  return map;
}

function readSimple(info) {
  if (info === 20) return false;
  if (info === 21) return true;
  if (info === 22) return null;
  throw new DecodeError("floats, undefined and simple values are not in the data model");
}

export function compareBytes(left, right) {
  const length = Math.min(left.length, right.length);
  for (let index = 0; index < length; index += 1) {
    if (left[index] !== right[index]) return left[index] - right[index];
  }
  return left.length - right.length;
}

function encodeHead(major, argument, out) {
  const value = BigInt(argument);
  if (value < 24n) {
    out.push((major << 5) | Number(value));
    return;
  }
  const width = value < 256n ? 0 : value < 65536n ? 1 : value < 2n ** 32n ? 2 : 3;
  out.push((major << 5) | (24 + width));
  for (let shift = BigInt(8 * ((1 << width) - 1)); shift >= 0n; shift -= 8n) {
    out.push(Number((value >> shift) & 0xffn));
  }
}

function encodeInto(value, out) {
  if (value === null) out.push(0xf6);
  else if (value === false) out.push(0xf4);
  else if (value === true) out.push(0xf5);
  else if (typeof value === "bigint" || typeof value === "number") {
    const integer = BigInt(value);
    if (integer >= 0n) encodeHead(0, integer, out);
    else encodeHead(1, -1n - integer, out);
  } else if (typeof value === "string") {
    const bytes = UTF8_ENCODER.encode(value);
    encodeHead(3, bytes.length, out);
    for (const byte of bytes) out.push(byte);
  } else if (value instanceof Uint8Array) {
    encodeHead(2, value.length, out);
    for (const byte of value) out.push(byte);
  } else if (Array.isArray(value)) {
    encodeHead(4, value.length, out);
    for (const item of value) encodeInto(item, out);
  } else {
    const entries = value instanceof Map ? [...value.entries()] : Object.entries(value);
    const encoded = entries.map(([key, item]) => [encodeCbor(key), item]);
    encoded.sort((left, right) => compareBytes(left[0], right[0]));
    encodeHead(5, encoded.length, out);
    for (const [key, item] of encoded) {
      for (const byte of key) out.push(byte);
      encodeInto(item, out);
    }
  }
}

export function encodeCbor(value) {
  const out = [];
  encodeInto(value, out);
  return Uint8Array.from(out);
}
