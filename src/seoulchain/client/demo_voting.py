"""Demo poll: Mapo-gu's participatory budget, from creation to a published, verifiable result.

Governance grants city hall `vote.organiser`. The poll is a threshold poll: three agencies'
trustees (city hall, Mapo-gu and Jongno-gu) run the key ceremony, and any two of them can
decrypt. Each trustee's secrets stay in keys/vote-trustee-<agency>/ (`trustee.key` and
`trustee.dkey`, as `seoulchain vote trustee-cert` and `trustee-voutput` write them, readable
by their owner only); the threshold parameters go to keys/vote-threshold.json, written last,
so a ceremony is either whole on disk or run again. City hall creates the poll with those
parameters and publishes DEMO_POLL_VOTERS public credentials in the same batch; the private
credentials go to demo-docs/voting/credentials.txt (readable by its owner only), as the
organiser would hand them out. Each simulated voter casts from a fresh chain key, a few
change their minds (a re-vote replaces their ballot); then city hall closes the poll and
tallies, Mapo-gu and Jongno-gu decrypt (city hall's share is not needed) and the result is
published, so `seoulchain vote verify mapo-budget-2027` re-checks every step from chain data.

Each round checks the poll's state on chain first, so a rerun submits only what is missing:
the ceremony's files are reused once the parameters file exists, credentials not yet
published are published while the poll is still in setup, and ballots are cast only for
published credentials.

The poll opens after its setup (creation and credentials), which must all be committed
before the open height. The built-in engine puts a batch in one block, so the poll opens at
the block after it; CometBFT's mempool may hand a batch to several proposals, so under
CometBFT (the node's status says so) the poll opens late enough for each setup tx to land
in its own block, and the ballots wait for the chain to reach the open height (devnet's
CometBFT makes a block about every second, empty or not).
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gmpy2 import mpz

from seoulchain.client.demo import Batch, grant_demo_roles
from seoulchain.client.http import NodeClient
from seoulchain.client.voting import fetch_poll_data, make_node_reader
from seoulchain.crypto import SigningKey
from seoulchain.crypto.hashing import sha256
from seoulchain.errors import LocalError, RemoteError
from seoulchain.node.agencies import load_agency_keys
from seoulchain.node.home import Home
from seoulchain.services.vote import (
    CREDENTIALS_PER_TX_MAX,
    GROUP_NAME,
    compute_uuid,
    load_election,
    load_partials,
    load_tally,
    load_trustee_items,
)
from seoulchain.voting import (
    compute_items_result,
    compute_partial_decryption,
    compute_public_credential,
    create_ballot,
    dump_result,
    generate_credential,
    get_group,
)
from seoulchain.voting.jsonform import dump_json, load_json, require_dict
from seoulchain.voting.keyceremony import (
    compute_vinputs,
    compute_voutput,
    derive_seed_keys,
    generate_certificate,
    generate_polynomial,
    make_threshold_parameters,
    open_decryption_key,
)

POLL_ID = "mapo-budget-2027"
ORGANISER_AGENCY = "city-hall"
# The poll's trustees, in certificate order; any TRUSTEES_NEEDED of them can decrypt.
TRUSTEE_AGENCIES = ("city-hall", "mapo-gu", "jongno-gu")
TRUSTEES_NEEDED = 2
# The trustees who decrypt in the demo: two of the three, the organiser not among them.
DECRYPTING_AGENCIES = ("mapo-gu", "jongno-gu")
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
# The key ceremony's files in keys/: the names `seoulchain vote trustee-cert`,
# `trustee-voutput` and `ceremony-parameters` give them.
TRUSTEE_DIRECTORY = "vote-trustee-{agency}"
TRUSTEE_SEED_FILE = "trustee.key"
TRUSTEE_DECRYPTION_KEY_FILE = "trustee.dkey"
THRESHOLD_PARAMETERS_FILE = "vote-threshold.json"
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


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=PRIVATE_FILE_MODE)
    path.chmod(PRIVATE_FILE_MODE)
    path.write_text(text)


def get_trustee_directory(keys_dir: Path, agency: str) -> Path:
    """Return the directory of an agency's trustee files."""
    return keys_dir / TRUSTEE_DIRECTORY.format(agency=agency)


def run_key_ceremony(keys_dir: Path) -> str:
    """Return the trustees' threshold parameters (JSON text), running every trustee's and
    the organiser's step of the key ceremony unless a whole ceremony is on disk."""
    path = keys_dir / THRESHOLD_PARAMETERS_FILE
    if path.exists():
        return path.read_text().strip()
    group = get_group(GROUP_NAME)
    made = [generate_certificate(group) for _ in TRUSTEE_AGENCIES]
    seeds = [seed for seed, _ in made]
    certificates = [dump_json(certificate.to_json()) for _, certificate in made]
    vinputs = compute_vinputs([generate_polynomial(group, seed, certificates, TRUSTEES_NEEDED)
                               for seed in seeds])
    voutputs = [compute_voutput(group, seed, certificates, vinput)
                for seed, vinput in zip(seeds, vinputs, strict=True)]
    parameters = dump_json(make_threshold_parameters(group, certificates, TRUSTEES_NEEDED,
                                                     vinputs[0], voutputs).to_json())
    for agency, seed, voutput in zip(TRUSTEE_AGENCIES, seeds, voutputs, strict=True):
        directory = get_trustee_directory(keys_dir, agency)
        sealed = require_dict(load_json(voutput, "voutput"), {"private_key", "public_key"},
                              "voutput")["private_key"]
        write_private(directory / TRUSTEE_SEED_FILE, seed.seed + "\n")
        write_private(directory / TRUSTEE_DECRYPTION_KEY_FILE, f"{sealed}\n")
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(parameters + "\n")
    os.replace(temporary, path)  # the parameters mark the ceremony whole
    return parameters


def load_decryption_key(keys_dir: Path, agency: str, poll: Mapping[str, Any]) -> mpz:
    """Open an agency's threshold decryption key from its trustee files; refuse files that
    are not the poll's trustee's."""
    directory = get_trustee_directory(keys_dir, agency)
    try:
        seed_text = (directory / TRUSTEE_SEED_FILE).read_text()
        sealed = (directory / TRUSTEE_DECRYPTION_KEY_FILE).read_text()
    except OSError as error:
        raise LocalError(f"cannot read {agency}'s trustee files for poll {POLL_ID!r}: "
                         f"{error}") from None
    group = get_group(GROUP_NAME)
    secret = open_decryption_key(group, derive_seed_keys(group, seed_text.strip()),
                                 sealed.strip())
    index = TRUSTEE_AGENCIES.index(agency)
    verification = load_json(poll["trustees"][index]["public_key"], "trustee key")
    if verification["public_key"] != str(group.exp_g(secret)):
        raise LocalError(f"{directory} holds a key of another ceremony, not that of trustee "
                         f"{index} ({agency}) of poll {POLL_ID!r}")
    return secret


def create_poll(batch: Batch, keys: Mapping[str, SigningKey], keys_dir: Path,
                directory: Path, voters: int, report: Callable[[str], None]) -> list[str]:
    """Create the poll and publish its credentials in one block; return the private
    credentials published."""
    path = directory / CREDENTIALS_FILE
    if (poll := read_poll(batch.client)) is not None:
        return complete_credentials(batch, keys, poll, path, report)
    trustees = [{"chain_key": keys[agency].public_key} for agency in TRUSTEE_AGENCIES]
    setup_txs = 1 + math.ceil(voters / CREDENTIALS_PER_TX_MAX)
    parameters = run_key_ceremony(keys_dir)
    open_height = compute_open_height(batch.client.get_status(), setup_txs)
    # Created and filled before it opens, closed by city hall.
    batch.add(keys[ORGANISER_AGENCY], "vote", "create_poll", poll_id=POLL_ID, **POLL_SPEC,
              open_height=open_height, close_height=open_height + 1_000_000,
              trustees=trustees, threshold=TRUSTEES_NEEDED, threshold_parameters=parameters)
    uuid = compute_uuid(batch.txs[-1].hash())  # the election's uuid, from its create tx
    private = [generate_credential() for _ in range(voters)]
    write_private(path, "".join(f"{item}\n" for item in private))
    add_credentials(batch, keys, uuid, private)
    batch.run()
    report(f"created poll {POLL_ID}, decrypted by any {TRUSTEES_NEEDED} of its "
           f"{len(TRUSTEE_AGENCIES)} trustees ({', '.join(TRUSTEE_AGENCIES)}; key ceremony "
           f"files in {keys_dir}/vote-trustee-*/); {len(private)} private credentials in "
           f"{path}")
    return private


def add_credentials(batch: Batch, keys: Mapping[str, SigningKey], uuid: str,
                    private: list[str]) -> None:
    """Add the transactions publishing the public credentials of `private`."""
    group = get_group(GROUP_NAME)
    public = [str(compute_public_credential(group, uuid, item)) for item in private]
    for start in range(0, len(public), CREDENTIALS_PER_TX_MAX):
        batch.add(keys[ORGANISER_AGENCY], "vote", "add_credentials", poll_id=POLL_ID,
                  credentials=public[start:start + CREDENTIALS_PER_TX_MAX])


def complete_credentials(batch: Batch, keys: Mapping[str, SigningKey],
                         poll: Mapping[str, Any], path: Path,
                         report: Callable[[str], None]) -> list[str]:
    """Publish the credentials an interrupted setup left out while the poll is in setup;
    return the private credentials published."""
    private = path.read_text().split() if path.exists() else []
    published = poll["credentials_count"]
    if published >= len(private):
        return private[:published]
    if batch.client.get_status()["height"] + 1 < poll["open_height"]:
        add_credentials(batch, keys, load_election(poll["election"]).uuid, private[published:])
        batch.run()
        report(f"published the last {len(private) - published} credentials of {POLL_ID}")
        return private
    report(f"poll {POLL_ID} opened with {published} of {len(private)} credentials "
           f"published; only their voters cast")
    return private[:published]


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
    """Close, tally, decrypt with two of the three trustees and publish the result,
    whichever is left."""
    poll = read_poll(batch.client)
    if poll is None or poll["result"] is not None:
        return
    if poll.get("threshold_parameters") is None:
        report(f"leaving poll {POLL_ID} as it is: an earlier demo made it with every trustee "
               f"decrypting")
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
    for agency in DECRYPTING_AGENCIES:
        if shares[TRUSTEE_AGENCIES.index(agency)] is None:
            secret = load_decryption_key(keys_dir, agency, poll)
            batch.add(keys[agency], "vote", "decrypt", poll_id=POLL_ID,
                      share=compute_partial_decryption(election, tally, secret).to_json()
                      .decode())
    batch.run()
    shares = batch.client.query("vote", "shares", poll_id=POLL_ID)["result"]
    counts = compute_items_result(
        election, tally, load_trustee_items([item["public_key"] for item in poll["trustees"]],
                                            poll["threshold_parameters"]),
        load_partials(election, shares))
    batch.add(keys[ORGANISER_AGENCY], "vote", "publish_result", poll_id=POLL_ID,
              result=dump_result(counts).decode())
    batch.run()
    report(f"closed, tallied and decrypted {POLL_ID} with {TRUSTEES_NEEDED} of its "
           f"{len(TRUSTEE_AGENCIES)} trustees ({' and '.join(DECRYPTING_AGENCIES)}): result "
           f"{dump_result(counts).decode()} (seoulchain vote verify {POLL_ID})")
