// The statement grammar's field renderings (docs/spec/proofs.md §7.4).

import { toHex } from "./bytes.js";
import { getAgencyName } from "./ledger.js";

// proofs.md §7.4: from year 10000 on, a time has no 4-digit ISO 8601 year.
const TIME_ISO_MS_LIMIT = 253402300800000n;

export const RESULT_CODE_NAMES = ["OK", "MALFORMED", "TOO_LARGE", "WRONG_CHAIN", "BAD_SIGNATURE",
  "BAD_NONCE", "EXPIRED", "UNKNOWN_SERVICE", "UNKNOWN_METHOD", "UNAUTHORIZED", "BAD_ARGS", "REFUSED",
  "INTERNAL", "MEMPOOL_FULL", "DUPLICATE"];

export function formatTime(timeMs) {
  if (timeMs >= TIME_ISO_MS_LIMIT) return `${timeMs} ms after the Unix epoch`;
  return new Date(Number(timeMs)).toISOString();
}

// JSON.stringify escapes exactly as §7.4's quote(): \" \\ \b \f \n \r \t, \u00xx below U+0020.
export function quoteText(text) {
  return JSON.stringify(text);
}

export function renderPublicKey(publicKey, genesis) {
  const shown = `ed25519 ${toHex(publicKey)}`;
  const name = getAgencyName(genesis, publicKey);
  return name === null ? shown : `${name} (${shown})`;
}

export function describeKey(key) {
  let length = 0;
  while (length < key.length && key[length] > 0x20 && key[length] < 0x7f) length += 1;
  const prefix = String.fromCharCode(...key.subarray(0, length));
  const rest = key.subarray(length);
  return quoteText(prefix) + (rest.length > 0 ? ` + 0x${toHex(rest)}` : "");
}

export function renderOutcome(code, log) {
  const name = code < BigInt(RESULT_CODE_NAMES.length) ? RESULT_CODE_NAMES[Number(code)] : `code ${code}`;
  return name + (log ? ` ${quoteText(log)}` : "");
}
