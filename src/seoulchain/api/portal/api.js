// Reading the node's API from the page: same origin, JSON answers, RFC 9457 problems.

/** An error answer from the node, with its problem `code` and readable `detail`. */
export class ApiProblem extends Error {
  constructor(status, code, detail) {
    super(detail);
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

// A page of many reads can meet the node's rate limit (docs/api.md, "Rate limits"): it
// waits as the 429 answer's Retry-After says, a few times, at most this long each.
const RATE_LIMIT_RETRIES = 3;
const RETRY_WAIT_MS_MAX = 5000;

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Return the JSON answer of GET `path`, or throw ApiProblem with the node's detail. */
export async function getJson(path) {
  let response = await fetch(path, { headers: { Accept: "application/json" } });
  for (let retry = 0; response.status === 429 && retry < RATE_LIMIT_RETRIES; retry++) {
    const waitS = Number(response.headers.get("Retry-After")) || 1;
    await sleep(Math.min(waitS * 1000, RETRY_WAIT_MS_MAX));
    response = await fetch(path, { headers: { Accept: "application/json" } });
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiProblem(response.status, body?.code ?? "http_error",
      body?.detail ?? `${response.status} ${response.statusText}`);
  }
  return body;
}

/** Return up to `itemsMax` items of a paged list, following its `next` links. */
export async function getPages(path, itemsMax) {
  const items = [];
  let next = path;
  let first = null;
  while (next && items.length < itemsMax) {
    const page = await getJson(next);
    first ??= page;
    items.push(...page.items);
    next = page.next;
  }
  return { ...first, items: items.slice(0, itemsMax) };
}

/** Return the answer of a service query, or null when the node has no such record. */
export async function runQuery(service, name, args = {}) {
  const query = new URLSearchParams(Object.entries(args).filter(([, value]) =>
    value !== "" && value !== undefined && value !== null));
  const suffix = query.size ? `?${query}` : "";
  return getJson(`/v1/services/${encodeURIComponent(service)}/queries/` +
    `${encodeURIComponent(name)}${suffix}`);
}

let servicesCache = null;

/** Return the installed services by name (asked once per page load). */
export async function getServices() {
  servicesCache ??= getJson("/v1/services").then((answer) =>
    Object.fromEntries(answer.services.map((service) => [service.name, service])));
  return servicesCache;
}

const txCache = new Map();
const TX_CACHE_ITEMS_MAX = 500;  // the latest txs of a few dozen blocks

/** Return a transaction's status, result and decoded body; committed ones are cached. */
export async function getTx(hash) {
  if (txCache.has(hash)) return txCache.get(hash);
  const answer = await getJson(`/v1/txs/${hash}`);
  if (answer.status === "committed") {
    if (txCache.size >= TX_CACHE_ITEMS_MAX) txCache.delete(txCache.keys().next().value);
    txCache.set(hash, answer);
  }
  return answer;
}

let keyNames = new Map();

/** Load who holds which key: governance members' agencies and validators' names. */
export async function loadKeyNames() {
  const services = await getServices();
  const names = new Map();
  const validators = await getPages("/v1/validators?limit=100", 1000).catch(() => null);
  for (const item of validators?.items ?? []) names.set(item.public_key, item.agency ?? item.name);
  if (services.gov) {
    const members = (await runQuery("gov", "members")).result;
    for (const member of members.members) {
      for (const key of member.keys) names.set(key, member.name);
    }
  }
  keyNames = names;
}

/** Return the agency or validator name of a public key (hex), or null if it has none. */
export function getKeyName(publicKey) {
  return keyNames.get(publicKey) ?? null;
}
