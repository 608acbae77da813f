// The JavaScript side of seoulchain's credential interoperability tests, on Digital
// Bazaar's packages (@digitalbazaar/vc, data-integrity, eddsa-rdfc-2022-cryptosuite,
// ed25519-multikey, vc-bitstring-status-list). Every document comes from a static loader:
// the npm context packages, the files given with --context URL=FILE, the DID document
// given with --did-document FILE (served at its DID and at each verification method) and
// the status list credential given with --status-list FILE. Nothing is fetched.
//
//   node vc-tool.mjs verify --credential F [--credential F]... --did-document F
//                           [--status-list F] [--context U=F]...
//   node vc-tool.mjs status --credential F --did-document F --status-list F [--context U=F]...
//   node vc-tool.mjs issue  --credential F --did-document F --seed HEX --key-id ID
//                           --created ISO [--context U=F]...
//
// verify and status print one JSON result line per credential and exit 0 when all are
// verified, 1 when one is not; issue prints the signed credential. Bad usage exits 2.
import {readFileSync} from 'node:fs';
import {parseArgs} from 'node:util';

import * as vc from '@digitalbazaar/vc';
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {checkStatus} from '@digitalbazaar/vc-bitstring-status-list';
import {contexts as credentialsContexts} from '@digitalbazaar/credentials-context';
import {cryptosuite as eddsaRdfc2022CryptoSuite} from
  '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import {contexts as bitstringContexts} from
  '@digitalbazaar/vc-bitstring-status-list-context';
import dataIntegrityContext from '@digitalbazaar/data-integrity-context';
import didContext from 'did-context';
import multikeyContext from '@digitalbazaar/multikey-context';

function readJson(path) {
  return JSON.parse(readFileSync(path, 'utf8'));
}

function buildDocuments({didDocument, statusList, extraContexts}) {
  const documents = new Map([
    ...credentialsContexts,
    ...dataIntegrityContext.contexts,
    ...multikeyContext.contexts,
    ...didContext.contexts,
    ...bitstringContexts,
  ]);
  for(const entry of extraContexts) {
    const at = entry.indexOf('=');
    documents.set(entry.slice(0, at), readJson(entry.slice(at + 1)));
  }
  if(didDocument) {
    documents.set(didDocument.id, didDocument);
    for(const method of didDocument.verificationMethod || []) {
      documents.set(method.id, {'@context': didDocument['@context'], ...method});
    }
  }
  if(statusList) {
    documents.set(statusList.id, statusList);
  }
  return documents;
}

function makeLoader(documents) {
  return async url => {
    if(!documents.has(url)) {
      throw new Error(`static loader: ${url} is not served (no network)`);
    }
    return {contextUrl: null, documentUrl: url,
      document: structuredClone(documents.get(url))};
  };
}

function verifySuite() {
  return new DataIntegrityProof({cryptosuite: eddsaRdfc2022CryptoSuite});
}

function describe(error) {
  if(!error) {
    return null;
  }
  const errors = Array.isArray(error.errors) ? error.errors : [error];
  return errors.map(e => e.message || String(e));
}

async function verify({credential, documentLoader, withStatus}) {
  const options = {credential, suite: verifySuite(), documentLoader};
  if(withStatus) {
    options.checkStatus = checkStatus;
  }
  const result = await vc.verifyCredential(options);
  const statuses = result.statusResult?.results?.map(r => r.status) ?? null;
  return {verified: result.verified, status: statuses,
    errors: describe(result.error) ?? describe(result.statusResult?.error)};
}

async function status({credential, documentLoader}) {
  const result = await checkStatus({credential, documentLoader, suite: verifySuite()});
  return {verified: result.verified,
    status: result.results?.map(r => r.status) ?? null, errors: describe(result.error)};
}

async function issue({credential, documentLoader, seedHex, keyId, didDocument, created}) {
  const key = await Ed25519Multikey.generate({
    seed: Uint8Array.from(Buffer.from(seedHex, 'hex')),
    id: keyId, controller: didDocument.id});
  const suite = new DataIntegrityProof({
    signer: key.signer(), date: created, cryptosuite: eddsaRdfc2022CryptoSuite});
  return vc.issue({credential, suite, documentLoader});
}

async function main() {
  const {values, positionals} = parseArgs({
    allowPositionals: true,
    options: {
      credential: {type: 'string', multiple: true}, 'did-document': {type: 'string'},
      'status-list': {type: 'string'}, context: {type: 'string', multiple: true},
      seed: {type: 'string'}, 'key-id': {type: 'string'}, created: {type: 'string'},
    },
  });
  const command = positionals[0];
  if(!['verify', 'status', 'issue'].includes(command) || !values.credential ||
    !values['did-document']) {
    process.stderr.write('usage: see the comment at the top of vc-tool.mjs\n');
    process.exit(2);
  }
  const credentials = values.credential.map(readJson);
  const didDocument = readJson(values['did-document']);
  const statusList = values['status-list'] ? readJson(values['status-list']) : null;
  const documentLoader = makeLoader(buildDocuments({
    didDocument, statusList, extraContexts: values.context || []}));
  if(command === 'issue') {
    if(!values.seed || !values['key-id'] || !values.created) {
      process.stderr.write('issue needs --seed, --key-id and --created\n');
      process.exit(2);
    }
    const signed = await issue({credential: credentials[0], documentLoader, seedHex: values.seed,
      keyId: values['key-id'], didDocument, created: values.created});
    process.stdout.write(JSON.stringify(signed, null, 2) + '\n');
    return;
  }
  if(command === 'status' && !statusList) {
    process.stderr.write('status needs --status-list\n');
    process.exit(2);
  }
  let allVerified = true;
  for(const credential of credentials) {
    const result = command === 'verify' ?
      await verify({credential, documentLoader, withStatus: statusList !== null}) :
      await status({credential, documentLoader});
    process.stdout.write(JSON.stringify(result) + '\n');
    allVerified = allVerified && result.verified;
  }
  process.exit(allVerified ? 0 : 1);
}

await main();
