// Strict JSON (docs/spec/proofs.md §5): RFC 8259 text whose numbers are integers only.
//
// JSON.parse cannot be used: it keeps the last of duplicate keys, turns 2^64 - 1 into a
// float and accepts 1.0. This parser rejects duplicate keys, fractions, exponents and
// NaN/Infinity, returns integers as BigInt and objects as Map, and throws DecodeError.

import { DecodeError } from "./cbor.js";

// A bundle nests four levels; deeper input is refused long before any stack limit.
const DEPTH_MAX = 64;
const WHITESPACE = " \t\n\r";
const ESCAPES = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };

export function parseStrictJson(text) {
  const parser = { text, position: 0 };
  const value = parseValue(parser, 0);
  skipWhitespace(parser);
  if (parser.position !== text.length) fail(parser, "text after the JSON value");
  return value;
}

function fail(parser, message) {
  throw new DecodeError(`${message} at character ${parser.position}`);
}

function skipWhitespace(parser) {
  while (parser.position < parser.text.length && WHITESPACE.includes(parser.text[parser.position])) {
    parser.position += 1;
  }
}

function parseValue(parser, depth) {
  if (depth > DEPTH_MAX) fail(parser, `JSON nested deeper than ${DEPTH_MAX}`);
  skipWhitespace(parser);
  const char = parser.text[parser.position];
  if (char === "{") return parseObject(parser, depth);
  if (char === "[") return parseArray(parser, depth);
  if (char === '"') return parseString(parser);
  if (char === "-" || (char >= "0" && char <= "9")) return parseInteger(parser);
  for (const [word, value] of [["true", true], ["false", false], ["null", null]]) {
    if (parser.text.startsWith(word, parser.position)) {
      parser.position += word.length;
      return value;
    }
  }
  return fail(parser, "not a JSON value (NaN and Infinity are not allowed)");
}

function parseObject(parser, depth) {
  const object = new Map();
  parser.position += 1;
  skipWhitespace(parser);
  if (parser.text[parser.position] === "}") {
    parser.position += 1;
    return object;
  }
  for (;;) {
    skipWhitespace(parser);
    if (parser.text[parser.position] !== '"') fail(parser, "expected an object key");
    const key = parseString(parser);
    if (object.has(key)) fail(parser, `duplicate key ${JSON.stringify(key)} in an object`);
    skipWhitespace(parser);
    if (parser.text[parser.position] !== ":") fail(parser, "expected ':'");
    parser.position += 1;
    object.set(key, parseValue(parser, depth + 1));
    skipWhitespace(parser);
    const char = parser.text[parser.position++];
    if (char === "}") return object;
    if (char !== ",") fail(parser, "expected ',' or '}'");
  }
}

function parseArray(parser, depth) {
  const items = [];
  parser.position += 1;
  skipWhitespace(parser);
  if (parser.text[parser.position] === "]") {
    parser.position += 1;
    return items;
  }
  for (;;) {
    items.push(parseValue(parser, depth + 1));
    skipWhitespace(parser);
    const char = parser.text[parser.position++];
    if (char === "]") return items;
    if (char !== ",") fail(parser, "expected ',' or ']'");
  }
}

function parseString(parser) {
  let out = "";
  parser.position += 1;
  for (;;) {
    if (parser.position >= parser.text.length) fail(parser, "unterminated string");
    const char = parser.text[parser.position++];
    if (char === '"') return out;
    if (char < " ") fail(parser, "control character in a string");
    if (char !== "\\") {
      out += char;
      continue;
    }
    const escape = parser.text[parser.position++];
    if (escape in ESCAPES) out += ESCAPES[escape];
    else if (escape === "u" && /^[0-9a-fA-F]{4}$/.test(parser.text.slice(parser.position, parser.position + 4))) {
      out += String.fromCharCode(parseInt(parser.text.slice(parser.position, parser.position + 4), 16));
      parser.position += 4;
    } else fail(parser, "bad escape in a string");
  }
}

function parseInteger(parser) {
  const match = /^-?(?:0|[1-9][0-9]*)/.exec(parser.text.slice(parser.position, parser.position + 400));
  if (match === null) fail(parser, "bad number");
  parser.position += match[0].length;
  const next = parser.text[parser.position];
  if (next === "." || next === "e" || next === "E") fail(parser, "non-integer number");
  return BigInt(match[0]);
}

export function canonicalJson(value) {
  // Keys sorted, no spaces: the text whose SHA-256 vc.issue anchors (client/credentials.py).
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    return `{${Object.keys(value).sort().map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}
