// Whether the key that anchored a credential held the role `vc.issuer.<type>` at the
// issuance height, proven from the chain's state (execution/service.py, services/vc.py).
//
// Theory of operation. The platform keeps, in the `auth` namespace, each (role, key)'s
// periods of holding the role: `rolehistory/<role>/<32-byte key>` → [[granted height,
// revoked height or null], ...], oldest first. A period is only ever opened (a grant) or
// closed (a revocation) at the height of the block that does it, so the history proven at
// any height not below the issuance height decides the question for the issuance height.
// The key is named by the anchor the page has already proven (its `type` and `signer`),
// so nothing here is a hint: the page has the history key's bundle proven from the pinned
// genesis (`proveState`), checks it answers for that key and is not older than the
// issuance, and applies the rule of `held_role_at` (execution/service.py): the key held the
// role in the state after block H when granted <= H < revoked. A node that withholds or
// alters the history makes the check fail; it cannot make a missing role pass.

import { decodeCbor } from "./cbor.js";
import { concatBytes, toHex, utf8 } from "./bytes.js";
import { ProofError } from "./integrity.js";

export const AUTH_NAMESPACE = "auth";
// services/vc.py ROLE_PREFIX: the role that lets a key issue credentials of a type.
const ROLE_PREFIX = "vc.issuer.";
// execution/service.py ROLE_HISTORY_KEY_PREFIX and ROLE_PERIODS_MAX.
const ROLE_HISTORY_PREFIX = "rolehistory/";
const ROLE_PERIODS_MAX = 64;
// ledger/types.py PUBLIC_KEY_BYTES: an Ed25519 public key.
const PUBLIC_KEY_BYTES = 32;
// services/vc.py CredentialType: lower-case names such as "youth-allowance".
const TYPE_PATTERN = /^[a-z][a-z0-9-]{0,63}$/;

export function computeRole(type) {
  return `${ROLE_PREFIX}${type}`;
}

export function computeRoleHistoryKey(role, publicKey) {
  // The key inside the `auth` namespace, as compute_role_history_key (execution/service.py).
  return concatBytes(utf8(`${ROLE_HISTORY_PREFIX}${role}/`), publicKey);
}

function isHeight(value) {
  return typeof value === "bigint" && value >= 0n;
}

export function decodeRoleHistory(valueHex) {
  // Return the periods [[granted, revoked or null], ...] of a proven value; null is none.
  if (valueHex === null) return [];
  const periods = decodeCbor(Uint8Array.from(valueHex.match(/../g) ?? [], (pair) => parseInt(pair, 16)));
  const ok = Array.isArray(periods) && periods.length <= ROLE_PERIODS_MAX && periods.every((period) =>
    Array.isArray(period) && period.length === 2 && isHeight(period[0])
    && (period[1] === null || (isHeight(period[1]) && period[1] >= period[0])));
  if (!ok) throw new ProofError("role", "the state value is not a role history ([[granted, revoked or null], ...])");
  return periods;
}

export function findHeldPeriod(periods, height) {
  // Return the period during which the role was held at `height`, or null (held_role_at).
  return periods.find(([granted, revoked]) => granted <= height && (revoked === null || height < revoked)) ?? null;
}

function describePeriods(periods) {
  if (periods.length === 0) return "never granted";
  return periods.map(([granted, revoked]) => `granted at height ${granted}`
    + (revoked === null ? ", not revoked" : `, revoked at height ${revoked}`)).join("; ");
}

export async function proveIssuerRole(record, { proveState }) {
  // Return the role the anchor's signer held at the anchor's height, with its proven period.
  const type = record.get("type");
  const signer = record.get("signer");
  const height = record.get("height");
  if (!(typeof type === "string" && TYPE_PATTERN.test(type) && signer instanceof Uint8Array
    && signer.length === PUBLIC_KEY_BYTES && isHeight(height))) {
    throw new ProofError("role", "the anchor does not name a credential type, a signing key and a height");
  }
  const role = computeRole(type);
  const key = computeRoleHistoryKey(role, signer);
  const statement = await proveState(key);
  if (statement.facts.key !== toHex(concatBytes(utf8(`${AUTH_NAMESPACE}/`), key))) {
    throw new ProofError("role", `the node proved another state key than ${role}'s history of key ${toHex(signer)}`);
  }
  if (statement.height < height) {
    throw new ProofError("role", `the node proved ${role}'s history at height ${statement.height}, before the `
      + `issuance height ${height}`);
  }
  const periods = decodeRoleHistory(statement.facts.value);
  const period = findHeldPeriod(periods, height);
  if (period === null) {
    throw new ProofError("role", `key ${toHex(signer)} did not hold ${role} at the issuance height ${height} `
      + `(${describePeriods(periods)}, as of height ${statement.height})`);
  }
  return { role, signer: toHex(signer), grantedHeight: period[0], revokedHeight: period[1],
    provenHeight: statement.height };
}
