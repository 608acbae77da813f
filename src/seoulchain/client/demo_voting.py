"""Demo poll: Mapo-gu's participatory budget, from creation to a published, verifiable result.

Governance grants city hall `vote.organiser`. City hall creates the poll with two trustees,
city hall and Mapo-gu, each holding a Belenios key whose private part stays in keys/
(`vote-trustee-<agency>.privkey`), and publishes DEMO_POLL_VOTERS public credentials in the
same batch; the private credentials go to demo-docs/voting/credentials.txt (readable by its
owner only), as the organiser would hand them out. Each simulated voter casts from a fresh
chain key, a few change their minds (a re-vote replaces their ballot); then city hall
closes the poll, tallies, both trustees decrypt and the result is published, so
`seoulchain vote verify mapo-budget-2027` re-checks every step from chain data.

Each round checks the poll's state on chain first, so a rerun submits only what is missing.

The poll opens after its setup (creation and credentials), which must all be committed
before the open height. The built-in engine puts a batch in one block, so the poll opens at
the block after it; CometBFT's mempool may hand a batch to several proposals, so under
CometBFT (the node's status says so) the poll opens late enough for each setup tx to land
in its own block, and the ballots wait for the chain to reach the open height (devnet's
CometBFT makes a block about every second, empty or not).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from seoulchain.client.demo import Batch, grant_demo_roles
from seoulchain.client.http import NodeClient
from seoulchain.client.voting import fetch_poll_data, make_node_reader
from seoulchain.crypto import SigningKey
from seoulchain.crypto.hashing import sha256
from seoulchain.errors import RemoteError
from seoulchain.node.agencies import load_agency_keys
from seoulchain.node.home import Home
from seoulchain.services.vote import (
    CREDENTIALS_PER_TX_MAX,
    GROUP_NAME,
    compute_uuid,
    load_election,
    load_tally,
    parse_trustee_keys,
)
from seoulchain.voting import (
    compute_partial_decryption,
    compute_public_credential,
    compute_result,
    create_ballot,
    dump_result,
    generate_credential,
    generate_trustee_key,
    get_group,
    parse_partial_decryption,
    parse_private_key,
)
from seoulchain.voting.jsonform import dump_json

POLL_ID = "mapo-budget-2027"
ORGANISER_AGENCY = "city-hall"
TRUSTEE_AGENCIES = ("city-hall", "mapo-gu")
# A few hundred residents: enough to show turnout and a tally, while every validator checks
# each ballot's proofs (about 40 ms of one core each, docs/performance.md).
DEMO_POLL_VOTERS = 200
# Every REVOTE_EVERY-th voter casts a second ballot, which replaces the first.
REVOTE_EVERY = 10
# Ballots submitted per batch (about one block): a node executes a block on its event loop,
# and each ballot's proofs take about 45 ms of CPU, so 10 keep its API answering.
BALLOTS_PER_BATCH = 10
# Under CometBFT, blocks beyond one per setup tx before the poll opens: the API's height may
# lag CometBFT's by one block, and the batch may reach the mempool across a proposal.
COMETBFT_OPEN_MARGIN_BLOCKS = 2
# Waiting for the open height: CometBFT as devnet writes its config (cometbft init's
# create_empty_blocks = true, timeout_commit = 1 s) makes about a block a second.
OPEN_WAIT_S = 60.0
OPEN_POLL_S = 0.5
VOTING_DIRECTORY = "voting"
CREDENTIALS_FILE = "credentials.txt"
PRIVATE_FILE_MODE = 0o600
POLL_SPEC = {
    "title": "Mapo-gu participatory budget 2027",
    "questions": [
        {"question": "Which projects should Mapo-gu fund in 2027? (up to two)",
         "answers": ["Playground renovation, Mangwon", "Bike lane along Hongje-cheon",
                     "Library garden, Seogyo", "Night-time street lighting, Ahyeon"],
         "min": 1, "max": 2, "blank": False},
        {"question": "Extend the night bus N62 to Sangam?", "answers": ["Yes", "No"],
         "min": 1, "max": 1, "blank": True}],
    # The demo's voters hold no residency credentials on chain: the organiser's register
    # of them, kept off chain, is what eligibility commits to.
    "eligibility": {"kind": "list",
                    "list_hash": sha256(f"demo voter register: {DEMO_POLL_VOTERS} voters"
                                        .encode())},
}
# A ballot per voter drawn from these (seeded by the voter's number): projects, then the bus.
DEMO_CHOICES = ([[1, 1, 0, 0], [0, 1, 0]], [[0, 1, 1, 0], [0, 1, 0]],
                [[0, 0, 1, 1], [0, 0, 1]], [[1, 0, 0, 0], [1, 0, 0]],
                [[0, 0, 0, 1], [0, 1, 0]])


def seed_poll_from_home(client: NodeClient, home: Home, directory: Path,
                        report: Callable[[str], None]) -> int:
    """Seed the demo poll with the agencies' keys of a home's (or devnet's) keys/."""
    genesis = home.load_genesis()
    return seed_poll(client, load_agency_keys(home.keys_dir, genesis), home.keys_dir,
                     genesis.threshold, directory, report)


def seed_poll(client: NodeClient, keys: Mapping[str, SigningKey], keys_dir: Path,
              threshold: int, directory: Path, report: Callable[[str], None],
              voters: int = DEMO_POLL_VOTERS) -> int:
    """Run the demo poll's rounds still missing on chain; return the transactions sent."""
    if any(name not in keys for name in (ORGANISER_AGENCY, *TRUSTEE_AGENCIES)):
        report("not seeding the demo poll: this home has no keys for the demo agencies")
        return 0
    batch = Batch(client, client.get_status()["chain_id"], {})
    grant_demo_roles(batch, keys, threshold, report,
                     grants=((ORGANISER_AGENCY, "vote.organiser"),))
    credentials = create_poll(batch, keys, keys_dir, directory / VOTING_DIRECTORY, voters,
                              report)
    cast_ballots(batch, credentials, report)
    finish_poll(batch, keys, keys_dir, report)
    return batch.committed


def read_poll(client: NodeClient) -> dict[str, Any] | None:
    """Return the demo poll's record, or None before it is created."""
    return client.query("vote", "poll", poll_id=POLL_ID)["result"]


def load_trustee_key(keys_dir: Path, agency: str) -> tuple[str, Path]:
    """Return an agency's trustee public key (JSON text) and its private key file, made on
    the first run."""
    private = keys_dir / f"vote-trustee-{agency}.privkey"
    public = keys_dir / f"vote-trustee-{agency}.pubkey"
    if not private.exists() or not public.exists():
        pair = generate_trustee_key(get_group(GROUP_NAME))
        write_private(private, dump_json(str(pair.private_key)))
        public.write_text(dump_json(pair.public.to_json()))
    return public.read_text(), private


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=PRIVATE_FILE_MODE)
    path.chmod(PRIVATE_FILE_MODE)
    path.write_text(text)


def create_poll(batch: Batch, keys: Mapping[str, SigningKey], keys_dir: Path,
                directory: Path, voters: int, report: Callable[[str], None]) -> list[str]:
    """Create the poll and publish its credentials in one block; return the private ones."""
    path = directory / CREDENTIALS_FILE
    if read_poll(batch.client) is not None:
        return path.read_text().split() if path.exists() else []
    trustees = [{"chain_key": keys[agency].public_key,
                 "public_key": load_trustee_key(keys_dir, agency)[0]}
                for agency in TRUSTEE_AGENCIES]
    setup_txs = 1 + math.ceil(voters / CREDENTIALS_PER_TX_MAX)
    open_height = compute_open_height(batch.client.get_status(), setup_txs)
    # Created and filled before it opens, closed by city hall.
    batch.add(keys[ORGANISER_AGENCY], "vote", "create_poll", poll_id=POLL_ID, **POLL_SPEC,
              open_height=open_height, close_height=open_height + 1_000_000,
              trustees=trustees, threshold=len(trustees))
    uuid = compute_uuid(batch.txs[-1].hash())  # the election's uuid, from its create tx
    private = [generate_credential() for _ in range(voters)]
    write_private(path, "".join(f"{item}\n" for item in private))
    group = get_group(GROUP_NAME)
    public = [str(compute_public_credential(group, uuid, item)) for item in private]
    for start in range(0, len(public), CREDENTIALS_PER_TX_MAX):
        batch.add(keys[ORGANISER_AGENCY], "vote", "add_credentials", poll_id=POLL_ID,
                  credentials=public[start:start + CREDENTIALS_PER_TX_MAX])
    batch.run()
    report(f"created poll {POLL_ID} with trustees {' and '.join(TRUSTEE_AGENCIES)}; "
           f"{len(private)} private credentials in {path}")
    return private


def compute_open_height(status: Mapping[str, Any], setup_txs: int) -> int:
    """Return the first height a poll whose `setup_txs` are submitted now can open at."""
    if status.get("engine") == "cometbft":
        return status["height"] + 1 + setup_txs + COMETBFT_OPEN_MARGIN_BLOCKS
    return status["height"] + 2


def wait_until_open(client: NodeClient, open_height: int) -> None:
    """Return once the next block is at `open_height` or later, so ballots are admitted."""
    deadline = time.monotonic() + OPEN_WAIT_S
    while (height := client.get_status()["height"]) + 1 < open_height:
        if time.monotonic() > deadline:
            raise RemoteError(f"the chain stayed at height {height} for {OPEN_WAIT_S:.0f} s; "
                              f"the poll opens at {open_height} (does the node make empty "
                              "blocks?)")
        time.sleep(OPEN_POLL_S)


def cast_ballots(batch: Batch, credentials: list[str], report: Callable[[str], None]) -> None:
    """Cast each voter's ballot (and the re-votes) not yet on chain, from fresh keys."""
    poll = read_poll(batch.client)
    if poll is None or poll["closed_height"] is not None or not credentials:
        return
    wait_until_open(batch.client, poll["open_height"])
    election = load_election(poll["election"])
    cast = {}
    for stored in fetch_poll_data(make_node_reader(batch.client), POLL_ID).ballots:
        cast[stored["credential"]] = cast.get(stored["credential"], 0) + 1
    pending = []
    for number, credential in enumerate(credentials):
        public = str(compute_public_credential(election.group, election.uuid, credential))
        wanted = 2 if number % REVOTE_EVERY == 0 else 1
        for round_number in range(cast.get(public, 0), wanted):
            choices = random.Random(number * 2 + round_number).choice(DEMO_CHOICES)
            pending.append(create_ballot(election, credential, choices).raw.decode())
    for start in range(0, len(pending), BALLOTS_PER_BATCH):
        for ballot in pending[start:start + BALLOTS_PER_BATCH]:
            batch.add(SigningKey.generate(), "vote", "cast", poll_id=POLL_ID, ballot=ballot)
        batch.run()
    if pending:
        report(f"{len(pending)} ballots cast in {POLL_ID} by {len(credentials)} simulated "
               f"voters, each from a fresh key (every {REVOTE_EVERY}th voted twice)")


def finish_poll(batch: Batch, keys: Mapping[str, SigningKey], keys_dir: Path,
                report: Callable[[str], None]) -> None:
    """Close, tally, decrypt with both trustees and publish the result, whichever is left."""
    poll = read_poll(batch.client)
    if poll is None or poll["result"] is not None:
        return
    if poll["closed_height"] is None:
        batch.add(keys[ORGANISER_AGENCY], "vote", "close", poll_id=POLL_ID)
        batch.run()
    while (poll := read_poll(batch.client))["tally"] is None:  # type: ignore[index]
        batch.add(keys[ORGANISER_AGENCY], "vote", "tally", poll_id=POLL_ID)
        batch.run()
    election = load_election(poll["election"])
    tally = load_tally(election, poll["tally"])
    shares = batch.client.query("vote", "shares", poll_id=POLL_ID)["result"]
    for index, agency in enumerate(TRUSTEE_AGENCIES):
        if shares[index] is None:
            secret = parse_private_key(election.group,
                                       load_trustee_key(keys_dir, agency)[1].read_bytes())
            batch.add(keys[agency], "vote", "decrypt", poll_id=POLL_ID,
                      share=compute_partial_decryption(election, tally, secret).to_json()
                      .decode())
    batch.run()
    shares = batch.client.query("vote", "shares", poll_id=POLL_ID)["result"]
    counts = compute_result(election, tally,
                            parse_trustee_keys([item["public_key"] for item in poll["trustees"]]),
                            [parse_partial_decryption(election, share.encode())
                             for share in shares])
    batch.add(keys[ORGANISER_AGENCY], "vote", "publish_result", poll_id=POLL_ID,
              result=dump_result(counts).decode())
    batch.run()
    report(f"closed, tallied and decrypted {POLL_ID}: result {dump_result(counts).decode()} "
           f"(seoulchain vote verify {POLL_ID})")
