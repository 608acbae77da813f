// Verifies several bundles with the page's JavaScript verifier
// (src/seoulchain/api/portal/verify/bundle.js) in one process, each with the checkpoint a
// user would type in (`height:block id`, or none). Prints one JSON report on stdout.
//
//   node tests/portal/verify_bundles.mjs CASES.json
//
// CASES.json: {"genesis": "<genesis JSON text>", "cases": [{"name", "bundle": "<bundle
// text>", "checkpoint": "H:BLOCK_ID" | null}]}

import { readFileSync } from "node:fs";
import { BundleError, loadGenesis, verifyBundle } from "../../src/seoulchain/api/portal/verify/bundle.js";

function parseCheckpoint(text) {
  if (text === null) return null;
  const [height, blockId] = text.split(":");
  return { height: BigInt(height), blockId };
}

async function outcome(bundleText, genesis, checkpoint) {
  try {
    const statement = await verifyBundle(bundleText, genesis, parseCheckpoint(checkpoint));
    return { ok: true, text: statement.text, trust: statement.trust, lightBlocks: statement.lightBlocks };
  } catch (error) {
    if (error instanceof BundleError) return { ok: false, step: error.step, error: error.message };
    return { ok: false, step: null, error: `unexpected ${error.name}: ${error.message}` };
  }
}

const input = JSON.parse(readFileSync(process.argv[2], "utf8"));
const genesis = await loadGenesis(input.genesis);
const results = {};
for (const { name, bundle, checkpoint } of input.cases) {
  results[name] = await outcome(bundle, genesis, checkpoint);
}
process.stdout.write(`${JSON.stringify(results)}\n`);
