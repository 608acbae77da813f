// The one search box: a height, a tx hash (or a document hash), a DID or a VIN.

import { getJson } from "./api.js";

const VIN_PATTERN = /^[0-9A-HJ-NPR-Z]{17}$/i;  // ISO 3779: no I, O or Q
const HASH_PATTERN = /^(sha256:)?[0-9a-f]{64}$/i;
const HEIGHT_PATTERN = /^\d{1,19}$/;

/** Return the portal route for a search, or null when the text names nothing we know. */
export async function findRoute(text) {
  const query = text.trim();
  if (HEIGHT_PATTERN.test(query)) return `/block/${Number(query)}`;
  if (query.startsWith("did:")) return `/did/${query}`;
  if (HASH_PATTERN.test(query)) {
    const hash = query.toLowerCase().replace(/^sha256:/, "");
    const tx = await getJson(`/v1/txs/${hash}`);
    return tx.status === "unknown" ? `/document/${hash}` : `/tx/${hash}`;
  }
  if (VIN_PATTERN.test(query)) return `/vehicle/${query.toUpperCase()}`;
  return null;
}
