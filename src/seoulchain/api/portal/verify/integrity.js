// W3C Data Integrity proofs of the `eddsa-rdfc-2022` cryptosuite (vc-di-eddsa v1.0 §3.3),
// verified in the browser as src/seoulchain/credentials/integrity.py verifies them.
//
// Theory of operation. The proof configuration (the proof without its value, with the
// document's `@context`) and the document without its proof are each canonicalised with
// RDFC-1.0 to N-Quads by digitalbazaar's jsonld (./vendor/jsonld.min.js, which the page
// loads as a classic script: `globalThis.jsonld`; it contains rdf-canonize), in its safe
// mode, so a property no context defines is refused rather than silently left out of the
// signature. SHA-256 of each (WebCrypto) are joined, and the Ed25519 signature in
// `proofValue` (multibase base58btc) is checked over them (./ed25519.js, as strict as
// libsodium) with the key the caller's `resolveKey(method, purpose)` returns. JSON-LD
// contexts come only from a loader of the contexts seoulchain ships (`loadShippedContexts`:
// the node's copy of credentials/contexts/, each file checked against the SHA-256 of its
// manifest); any other context URL is refused, never fetched.

import { concatBytes, fromBase58, sha256, toHex, utf8 } from "./bytes.js";
import { isValidSignature } from "./ed25519.js";
import { canonicalJson } from "./json.js";

export const PROOF_TYPE = "DataIntegrityProof";
export const CRYPTOSUITE = "eddsa-rdfc-2022";
export const ASSERTION_METHOD = "assertionMethod";
const MULTIBASE_BASE58BTC = "z";
const SIGNATURE_BYTES = 64;
// integrity.py's PROOF_VALUE_CHARS_MAX: 88 base58 characters of 64 bytes, plus the header.
const PROOF_VALUE_CHARS_MAX = 89;
// integrity.py's bounds on a document before it is canonicalised, with the same numbers:
// a credential nests 3-5 levels, has under 100 JSON values and arrays of 2-4 items.
const JSON_DEPTH_MAX = 16;
const JSON_VALUES_MAX = 512;
const JSON_ARRAY_ITEMS_MAX = 64;
// RDFC-1.0's work on look-alike blank nodes (a "poison graph"): rdf-canonize's own bound,
// a work factor of 1 (about n^1 calls of Hash N-Degree Quads for n blank nodes).
const CANONICALIZE_WORK_FACTOR_MAX = 1;
// The shipped contexts: a manifest of {url, file, sha256} and the files beside it.
const MANIFEST_FILE = "manifest.json";
// Six contexts are shipped; a few spare.
const CONTEXTS_MAX = 16;

// The credential types the chain anchors, by their name in a credential's `type`
// (client/credentials.py, CREDENTIAL_TYPES; a test checks the two agree).
export const CREDENTIAL_TYPE_NAMES = Object.freeze({
  ResidencyCredential: "residency",
  AgeBandCredential: "age-band",
  YouthAllowanceEligibilityCredential: "youth-allowance",
  BusinessLicenceCredential: "business-licence",
  TrainingCertificateCredential: "training",
});

export class ProofError extends Error {
  constructor(step, message) {
    super(`${step}: ${message}`);
    this.name = "ProofError";
    this.step = step;
    this.reason = message;
  }
}

// ---------------------------------------------------------------------------- contexts

export async function loadShippedContexts(readFile) {
  // readFile(name) gives a file's bytes from the node's copy of credentials/contexts/.
  let manifest;
  try {
    manifest = JSON.parse(new TextDecoder().decode(await readFile(MANIFEST_FILE)));
  } catch (error) {
    throw new ProofError("context", `the shipped contexts' manifest is unreadable: ${error.message ?? error}`);
  }
  const entries = Array.isArray(manifest?.contexts) ? manifest.contexts : [];
  if (entries.length === 0 || entries.length > CONTEXTS_MAX) {
    throw new ProofError("context", `the contexts manifest lists ${entries.length} contexts`);
  }
  const documents = new Map();
  for (const entry of entries) {
    const bytes = await readFile(entry.file);
    if (toHex(await sha256(bytes)) !== entry.sha256) {
      throw new ProofError("context", `context file ${entry.file} does not match the SHA-256 of ${MANIFEST_FILE}`);
    }
    documents.set(entry.url, JSON.parse(new TextDecoder().decode(bytes)));
  }
  return documents;
}

export function createDocumentLoader(documents) {
  // A jsonld document loader that serves `documents` (URL -> JSON) and refuses the rest.
  return async (url) => {
    if (!documents.has(url)) {
      throw new ProofError("context", `the context ${url} is not one seoulchain ships; `
        + `it is never fetched (shipped: ${[...documents.keys()].join(", ")})`);
    }
    return { contextUrl: null, documentUrl: url, document: structuredClone(documents.get(url)) };
  };
}

// ------------------------------------------------------------------------------ verify

export async function verifyProof(document, resolveKey, documentLoader, purpose = ASSERTION_METHOD) {
  // Verify the document's single eddsa-rdfc-2022 proof; return what it asserts, or throw.
  checkBounds(document);
  const proof = document.proof;
  if (proof === null || typeof proof !== "object" || Array.isArray(proof)) {
    throw new ProofError("proof", "the document must have exactly one proof object");
  }
  checkProofOptions(proof, purpose);
  const unsecured = withoutKey(document, "proof");
  const options = withoutKey(proof, "proofValue");
  if (Object.hasOwn(options, "@context")) {
    checkContextPrefix(unsecured["@context"], options["@context"]);
    unsecured["@context"] = options["@context"];
    delete options["@context"];
  }
  const signature = decodeProofValue(proof.proofValue);
  const publicKey = await resolveKey(proof.verificationMethod, proof.proofPurpose);
  const hashes = await computeHashData(unsecured, options, documentLoader);
  if (!(await isValidSignature(publicKey, concatBytes(hashes.proofConfig, hashes.document), signature))) {
    throw new ProofError("signature", `the proof by ${proof.verificationMethod} does not verify over this document`);
  }
  return { verificationMethod: proof.verificationMethod, proofPurpose: proof.proofPurpose,
    created: proof.created ?? null, publicKey, proofConfigHash: toHex(hashes.proofConfig),
    documentHash: toHex(hashes.document) };
}

function withoutKey(object, name) {
  return Object.fromEntries(Object.entries(object).filter(([key]) => key !== name));
}

function checkProofOptions(proof, purpose) {
  if (proof.type !== PROOF_TYPE || proof.cryptosuite !== CRYPTOSUITE) {
    throw new ProofError("proof", `the proof must be a ${PROOF_TYPE} of cryptosuite ${CRYPTOSUITE}, not `
      + `${JSON.stringify(proof.type ?? null)} / ${JSON.stringify(proof.cryptosuite ?? null)}`);
  }
  if (typeof proof.verificationMethod !== "string") {
    throw new ProofError("proof", "the proof's verificationMethod must be a URL string");
  }
  if (proof.proofPurpose !== purpose) {
    throw new ProofError("proof", `the proof's purpose is ${JSON.stringify(proof.proofPurpose ?? null)}, `
      + `the verifier expects ${JSON.stringify(purpose)}`);
  }
}

function checkContextPrefix(documentContext, proofContext) {
  // vc-di-eddsa §3.3.2 step 4: the proof's @context must start the document's.
  const ours = Array.isArray(documentContext) ? documentContext : [documentContext];
  const theirs = Array.isArray(proofContext) ? proofContext : [proofContext];
  if (canonicalJson(ours.slice(0, theirs.length)) !== canonicalJson(theirs)) {
    throw new ProofError("proof", "the proof's @context does not start the document's @context");
  }
}

function decodeProofValue(value) {
  if (typeof value !== "string" || !value.startsWith(MULTIBASE_BASE58BTC) || value.length > PROOF_VALUE_CHARS_MAX) {
    throw new ProofError("proof", "proofValue must be a base58btc multibase ('z') Ed25519 signature");
  }
  let signature;
  try {
    signature = fromBase58(value.slice(1), "proofValue", SIGNATURE_BYTES);
  } catch {
    throw new ProofError("proof", "proofValue is not base58btc text");
  }
  if (signature.length !== SIGNATURE_BYTES) {
    throw new ProofError("proof", `proofValue holds ${signature.length} bytes, not ${SIGNATURE_BYTES}`);
  }
  return signature;
}

async function computeHashData(unsecured, options, documentLoader) {
  // SHA-256(canonical proof configuration) and SHA-256(canonical document), §3.3.4-3.3.6.
  const proofConfig = { ...options, "@context": unsecured["@context"] };
  return { proofConfig: await sha256(utf8(await canonicalize(proofConfig, documentLoader))),
    document: await sha256(utf8(await canonicalize(unsecured, documentLoader))) };
}

export async function canonicalize(document, documentLoader) {
  // RDFC-1.0 canonical N-Quads of a bounded JSON-LD document, by the vendored jsonld.
  checkBounds(document);
  const jsonld = globalThis.jsonld;
  if (!jsonld || typeof jsonld.canonize !== "function") {
    throw new ProofError("canonicalisation", "the JSON-LD library (verify/vendor/jsonld.min.js) is not loaded");
  }
  try {
    return await jsonld.canonize(document, { algorithm: "RDFC-1.0", format: "application/n-quads", safe: true,
      documentLoader, maxWorkFactor: CANONICALIZE_WORK_FACTOR_MAX });
  } catch (error) {
    throw findCause(error);
  }
}

function findCause(error) {
  // jsonld wraps a loader's error in its own; a refusal of ours is the reason to report.
  for (let cause = error, depth = 0; cause && depth < 8; depth += 1) {
    if (cause instanceof ProofError) return cause;
    cause = cause.details?.cause ?? cause.cause;
  }
  const event = error?.details?.event;
  if (event && event.level === "warning") {
    const property = event.details?.property ?? event.details?.expandedProperty ?? event.details?.term;
    return new ProofError("canonicalisation", `${event.message}${property ? ` (${JSON.stringify(property)})` : ""}: `
      + "a term the document's contexts do not define would be left out of the signature");
  }
  return new ProofError("canonicalisation", `the document is not JSON-LD that can be canonicalised: ${error?.message ?? error}`);
}

export function checkBounds(document) {
  // Refuse a document too deep, with too many values or too long an array (integrity.py).
  const stack = [[document, 0]];
  for (let count = 1; stack.length > 0; count += 1) {
    const [value, depth] = stack.pop();
    if (depth > JSON_DEPTH_MAX) throw new ProofError("proof", `the document nests deeper than ${JSON_DEPTH_MAX} levels`);
    if (count > JSON_VALUES_MAX) throw new ProofError("proof", `the document has more than ${JSON_VALUES_MAX} JSON values`);
    if (Array.isArray(value) && value.length > JSON_ARRAY_ITEMS_MAX) {
      throw new ProofError("proof", `a JSON array of the document has ${value.length} items, more than ${JSON_ARRAY_ITEMS_MAX}`);
    }
    const children = value !== null && typeof value === "object" ? Object.values(value) : [];
    for (const child of children) stack.push([child, depth + 1]);
  }
}

// The credential's own `type` must name exactly one chain type, the one its anchor records:
// an issuer holding the role for one type cannot anchor a credential of another.
export function checkCredentialType(credential, anchoredType) {
  const names = Array.isArray(credential.type) ? credential.type : [credential.type];
  const found = names.filter((name) => Object.hasOwn(CREDENTIAL_TYPE_NAMES, name))
    .map((name) => CREDENTIAL_TYPE_NAMES[name]);
  if (found.length !== 1 || found[0] !== anchoredType) {
    throw new ProofError("type", `the credential's type ${JSON.stringify(names).slice(0, 120)} `
      + `is not the anchored type ${JSON.stringify(anchoredType)}`);
  }
}
