"""Voting benchmark: ballot size, ballot verification rate, and tally time for N ballots.

Sets up a BELENIOS-2048 election of the shape of a city consultation (question 1: pick 0
or 1 of 2; question 2: pick 1 or 2 of 3, or vote blank — 6 encrypted choices per ballot)
with `trustees` n-of-n trustees and `ballots` voters, makes one ballot per voter, then times
what validators and tallying parties do: `verify_ballot` on each (the admission check),
the homomorphic tally, each trustee's partial decryption, the check of every partial
decryption and the result. Public credentials, ballots and their verification are spread
over `workers` processes (each ballot is independent and the gmpy2 work is CPU-bound); the
tally, decryptions and result check run in this process. The result is checked against the
sum of the generated choices, so a broken run cannot report figures. With `belenios_dir`
the poll is exported there (`UUID.bel`) and `belenios-tool election verify` is timed on it.
Figures are measured, never asserted in tests.

Run: `python -m seoulchain.bench.voting BALLOTS` prints the figures as JSON.

`python -m seoulchain.bench.voting --admission BALLOTS` (or `seoulchain bench voting
--admission BALLOTS`, which prints a table) measures what a node's clients see
while it verifies ballots (`run_admission_bench`): a one-validator network (a real
`seoulchain start` process, default config) opens a poll of BALLOTS voters, then one client
posts all their ballots in one `POST /v1/txs/batch` while another asks `GET /v1/status`
every STATUS_PERIOD_S; the status latencies from the batch's send until every ballot is
committed (admission and the block's execution) are the figures. With `--engine cometbft`
the validator is the application under a CometBFT node (`seoulchain start --engine
cometbft`, default CometBFT config); CometBFT makes a block every second even when it has no
txs, so the poll opens a margin of blocks later, estimated from one ballot made here, and
the run waits for the chain to reach it before posting the batch.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import httpx

from seoulchain.bench.loadgen import compute_percentile
from seoulchain.bench.network import NODE_START_TIMEOUT_S, LocalNetwork, OtherEngine
from seoulchain.client.http import NodeClient
from seoulchain.codec import encode
from seoulchain.crypto import SigningKey
from seoulchain.errors import LocalError
from seoulchain.ledger.types import Transaction
from seoulchain.services.vote import CREDENTIALS_PER_TX_MAX
from seoulchain.voting import (
    BELENIOS_2048,
    Election,
    PublicCredentials,
    Question,
    TrusteeKeyPair,
    VerifiedBallot,
    combine_trustee_keys,
    compute_encrypted_tally,
    compute_partial_decryption,
    compute_public_credential,
    compute_result,
    create_ballot,
    export_archive,
    generate_credential,
    generate_trustee_key,
    make_election,
    verify_ballot,
    verify_result,
)
from seoulchain.voting.election import parse_election
from seoulchain.voting.jsonform import dump_json
from seoulchain.voting.trustees import TRUSTEES_MAX

BALLOTS_MAX = 100_000  # beyond this a run takes hours on one core
WORKERS_MAX = 256  # more processes than any build machine has cores is a typo
CHUNK_BALLOTS = 20  # ballots per worker task: ~1 s of CPU, fine-grained progress
# belenios-tool verified 220 ballots in 13 s wall; an hour covers 100,000 under load.
BELENIOS_TIMEOUT_S = 3600
# A status request this often while ballots are admitted: a monitoring client's pace.
STATUS_PERIOD_S = 0.05
# Ballots of one admission run: one batch request (8 MiB) holds about 600 ballots.
ADMISSION_BALLOTS_MAX = 500
# The longest a run waits for its ballots to commit: 500 ballots verified on one loaded
# core at ~250 ms each, twice over.
ADMISSION_TIMEOUT_S = 300.0
ADMISSION_POLL_ID = "bench-admission"
# Blocks from the poll's creation to its opening when blocks are made only for pending txs
# (the built-in engine): the poll's block, the credentials' block, then the ballots'.
ADMISSION_OPEN_BLOCKS = 3
# When blocks come at a fixed pace (CometBFT), the time to make the credentials and ballots
# is estimated from one ballot made beforehand, doubled for a shared machine whose load
# changes during the run...
SETUP_ESTIMATE_FACTOR = 2.0
# ...plus the worker pool's start and the setup txs' commits (two CometBFT blocks each).
SETUP_EXTRA_S = 15.0
QUESTIONS = [Question("Build the tram line?", ("Yes", "No"), 0, 1),
             Question("Which parks first?", ("Han river", "Namsan", "Bukhansan"), 1, 2,
                      blank=True)]
PLAINTEXTS = [[[1, 0], [0, 1, 0, 0]], [[0, 1], [0, 1, 1, 0]], [[0, 0], [1, 0, 0, 0]],
              [[1, 0], [0, 0, 1, 1]]]

Progress = Callable[[str, int, int], None]
_worker_state: dict[str, Any] = {}  # the election and credentials, set once per worker


def _elapsed_ms(start: float) -> float:
    """Return milliseconds since `start` (a perf_counter reading), rounded."""
    return round((time.perf_counter() - start) * 1000, 2)


def _init_worker(election: Election, public: PublicCredentials | None) -> None:
    """Keep the election and public credentials in this worker process."""
    _worker_state.update(election=election, public=public)


def _public_credentials_chunk(credentials: list[str]) -> tuple[int, float, list[Any]]:
    """Derive the public credentials of a chunk; return (pid, busy s, values)."""
    election = _worker_state["election"]
    start = time.perf_counter()
    values = [compute_public_credential(election.group, election.uuid, credential)
              for credential in credentials]
    return os.getpid(), time.perf_counter() - start, values


def _create_chunk(items: list[tuple[str, list[list[int]]]]) -> tuple[int, float, list[Any]]:
    """Make the ballots of a chunk; return (pid, busy s, [(raw, ms)])."""
    election = _worker_state["election"]
    start, made = time.perf_counter(), []
    for credential, plaintext in items:
        begin = time.perf_counter()
        raw = create_ballot(election, credential, plaintext).raw
        made.append((raw, _elapsed_ms(begin)))
    return os.getpid(), time.perf_counter() - start, made


def _verify_chunk(raws: list[bytes]) -> tuple[int, float, list[Any]]:
    """Verify the ballots of a chunk; return (pid, busy s, [(VerifiedBallot, ms)])."""
    election, public = _worker_state["election"], _worker_state["public"]
    start, checked = time.perf_counter(), []
    for raw in raws:
        begin = time.perf_counter()
        checked.append((verify_ballot(election, raw, public), _elapsed_ms(begin)))
    return os.getpid(), time.perf_counter() - start, checked


def _run_phase(pool: ProcessPoolExecutor, phase: str, function: Callable[[list[Any]], Any],
               items: Sequence[Any], progress: Progress) -> tuple[list[Any], dict[str, Any]]:
    """Run `function` over chunks of `items` in the pool; return results in order and rates."""
    chunks = [list(items[index:index + CHUNK_BALLOTS])
              for index in range(0, len(items), CHUNK_BALLOTS)]
    results: list[list[Any]] = [[] for _ in chunks]
    busy: dict[int, float] = defaultdict(float)
    done: dict[int, int] = defaultdict(int)
    start = time.perf_counter()
    progress(phase, 0, len(items))
    futures = {pool.submit(function, chunk): number for number, chunk in enumerate(chunks)}
    for future in as_completed(futures):
        pid, seconds, values = future.result()
        results[futures[future]] = values
        busy[pid] += seconds
        done[pid] += len(values)
        progress(phase, sum(done.values()), len(items))
    wall_s = time.perf_counter() - start
    per_worker = [done[pid] / busy[pid] for pid in busy if busy[pid] > 0]
    rates = {f"{phase}_s": round(wall_s, 2),
             f"{phase}_per_s": round(len(items) / wall_s, 1),
             f"{phase}_per_s_per_worker": round(statistics.fmean(per_worker), 1)}
    return [value for chunk in results for value in chunk], rates


def check_belenios_dir(directory: Path) -> None:
    """Refuse a belenios-tool run that cannot happen: no tool, or a directory in use."""
    if shutil.which("belenios-tool") is None:
        raise LocalError("belenios-tool is not installed (on PATH): run scripts/install-belenios")
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise LocalError(f"{directory} must be a new or empty directory for the archive")


def run_voting_bench(ballots: int, *, trustees: int = 2, seed: int = 0,
                     workers: int | None = None, belenios_dir: Path | None = None,
                     progress: Progress = lambda phase, done, total: None) -> dict[str, Any]:
    """Measure ballot creation, verification and the whole tally for `ballots` voters."""
    workers = (os.cpu_count() or 1) if workers is None else workers
    if not 1 <= ballots <= BALLOTS_MAX or not 1 <= trustees <= TRUSTEES_MAX:
        raise LocalError(f"ballots must be 1..{BALLOTS_MAX} and trustees 1..{TRUSTEES_MAX}")
    if not 1 <= workers <= WORKERS_MAX:
        raise LocalError(f"workers must be 1..{WORKERS_MAX}")
    if belenios_dir is not None:
        check_belenios_dir(belenios_dir)
    rng = random.Random(seed)
    group = BELENIOS_2048
    keys = [generate_trustee_key(group) for _ in range(trustees)]
    election = make_election(uuid="SeouLBench123456", name="bench", description="bench",
                             group=group, questions=QUESTIONS,
                             public_key=combine_trustee_keys(group, [key.public for key in keys]))
    credentials = [generate_credential() for _ in range(ballots)]
    plaintexts = [rng.choice(PLAINTEXTS) for _ in range(ballots)]
    figures: dict[str, Any] = {
        "group": group.name, "ballots": ballots, "trustees": trustees, "workers": workers,
        "cpus": os.cpu_count(), "load_average_start": [round(v, 2) for v in os.getloadavg()],
        "choices_per_ballot": sum(question.choice_count for question in QUESTIONS)}
    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(election, None)) as pool:
        values, _ = _run_phase(pool, "credentials", _public_credentials_chunk, credentials,
                               progress)
        public = PublicCredentials(dict.fromkeys(values, 1))
        made, rates = _run_phase(pool, "create", _create_chunk,
                                 list(zip(credentials, plaintexts, strict=True)), progress)
    figures.update(rates)
    created = [raw for raw, _ in made]
    with ProcessPoolExecutor(workers, initializer=_init_worker,
                             initargs=(election, public)) as pool:
        checked, rates = _run_phase(pool, "verify", _verify_chunk, created, progress)
    figures.update(rates)
    verified = [ballot for ballot, _ in checked]
    verify_ms = [ms for _, ms in checked]
    figures.update(
        ballot_bytes_mean=round(statistics.fmean(len(raw) for raw in created)),
        create_ms_median=statistics.median(ms for _, ms in made),
        verify_ms_median=statistics.median(verify_ms),
        verify_ballots_per_s=round(1000 / statistics.median(verify_ms), 1))
    progress("tally and decryption", 0, 1)
    tally_figures, tally, partials, result = _time_tally(election, verified, keys, plaintexts)
    progress("tally and decryption", 1, 1)
    figures.update(tally_figures)
    figures["verify_and_tally_s"] = round(
        figures["verify_s"] + (figures["tally_ms"] + figures["decrypt_ms_per_trustee"] * trustees
                               + figures["verify_decryptions_and_result_ms"]) / 1000, 2)
    if belenios_dir is not None:
        figures.update(_belenios_verify(belenios_dir, election, keys, public, created,
                                        (tally, partials, result), progress))
    figures["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    return figures


def _time_tally(election: Election, verified: list[VerifiedBallot], keys: list[TrusteeKeyPair],
                plaintexts: list[list[list[int]]]) -> tuple[dict[str, Any], Any, list[Any], Any]:
    """Time the encrypted tally, the partial decryptions and the result's computation and check."""
    start = time.perf_counter()
    tally = compute_encrypted_tally(election, verified)
    tally_ms = _elapsed_ms(start)
    start = time.perf_counter()
    partials = [compute_partial_decryption(election, tally, key.private_key) for key in keys]
    decrypt_ms = _elapsed_ms(start) / len(keys)
    trustees = [key.public for key in keys]
    start = time.perf_counter()
    result = compute_result(election, tally, trustees, partials)
    verify_result(election, tally, trustees, partials, result)
    check_ms = _elapsed_ms(start)
    expected = tuple(tuple(sum(plain[index][choice] for plain in plaintexts)
                           for choice in range(question.choice_count))
                     for index, question in enumerate(election.questions))
    if result != expected:
        raise AssertionError(f"tally {result} differs from the plaintexts' sum {expected}")
    return ({"tally_ms": tally_ms, "decrypt_ms_per_trustee": round(decrypt_ms, 2),
             "verify_decryptions_and_result_ms": check_ms, "result": [list(row) for row in result]},
            tally, partials, result)


def _belenios_verify(directory: Path, election: Election, keys: list[TrusteeKeyPair],
                     public: PublicCredentials, created: list[bytes], outcome: tuple[Any, ...],
                     progress: Progress) -> dict[str, Any]:
    """Export the poll to DIRECTORY and time `belenios-tool election verify` on it."""
    tally, partials, result = outcome
    start = time.perf_counter()
    path = export_archive(directory, election=election, trustees=[key.public for key in keys],
                          public_credentials=public, ballots=created, tally=tally,
                          partial_decryptions=partials, result=result)
    export_ms = _elapsed_ms(start)
    progress("belenios-tool election verify", 0, 1)
    begin_cpu = os.times()
    start = time.perf_counter()
    try:
        run = subprocess.run(["belenios-tool", "election", "verify", "--dir", str(directory)],
                             capture_output=True, text=True, timeout=BELENIOS_TIMEOUT_S,
                             check=False)
    except subprocess.TimeoutExpired:
        raise LocalError(
            f"belenios-tool election verify took over {BELENIOS_TIMEOUT_S} s") from None
    wall_s = time.perf_counter() - start
    end_cpu = os.times()
    progress("belenios-tool election verify", 1, 1)
    cpu_s = (end_cpu.children_user - begin_cpu.children_user
             + end_cpu.children_system - begin_cpu.children_system)
    output = (run.stdout + run.stderr).strip()
    return {"archive": str(path), "archive_bytes": path.stat().st_size, "export_ms": export_ms,
            "belenios_verify_s": round(wall_s, 2), "belenios_verify_cpu_s": round(cpu_s, 2),
            "belenios_verdict": "pass" if run.returncode == 0 else "fail",
            "belenios_exit": run.returncode, "belenios_output": output[-2000:]}


class AdmissionChain:
    """A one-validator network with a poll open to `ballots` voters, and their ballots."""

    def __init__(self, network: LocalNetwork, organiser: SigningKey, ballots: int,
                 workers: int, open_blocks: int = ADMISSION_OPEN_BLOCKS):
        self.network, self.organiser = network, organiser
        self.client = NodeClient(network.urls[0], timeout_s=ADMISSION_TIMEOUT_S)
        self.nonce = 0
        height = self.client.get_status()["height"]
        self.open_height = height + open_blocks
        trustee = generate_trustee_key(BELENIOS_2048)
        self.commit([self.sign("create_poll", {
            "poll_id": ADMISSION_POLL_ID, "title": "bench", "threshold": 1,
            "questions": [{"question": question.question, "answers": list(question.answers),
                           "min": question.min, "max": question.max,
                           "blank": question.blank} for question in QUESTIONS],
            "eligibility": {"kind": "list", "list_hash": bytes(32)},
            "open_height": self.open_height, "close_height": height + 10_000,
            "trustees": [{"chain_key": SigningKey.generate().public_key,
                          "public_key": dump_json(trustee.public.to_json())}]})])
        poll = self.client.query("vote", "poll", poll_id=ADMISSION_POLL_ID)["result"]
        election = parse_election(poll["election"].encode())
        credentials = [generate_credential() for _ in range(ballots)]
        plaintexts = [PLAINTEXTS[index % len(PLAINTEXTS)] for index in range(ballots)]
        with ProcessPoolExecutor(workers, initializer=_init_worker,
                                 initargs=(election, None)) as pool:
            public, _ = _run_phase(pool, "credentials", _public_credentials_chunk,
                                   credentials, noop)
            made, _ = _run_phase(pool, "create", _create_chunk,
                                 list(zip(credentials, plaintexts, strict=True)), noop)
        texts, step = [str(value) for value in public], CREDENTIALS_PER_TX_MAX
        self.commit([self.sign("add_credentials", {"poll_id": ADMISSION_POLL_ID,
                                                   "credentials": texts[start:start + step]})
                     for start in range(0, len(texts), step)])
        if self.client.get_status()["height"] >= self.open_height:
            raise LocalError(f"the poll opened (height {self.open_height}) before its "
                             f"credentials were published: setting up took longer than "
                             f"estimated on this machine; run again")
        # The ballots' admission checks them against the next block: the opening one.
        network.wait_for_height(self.open_height - 1, timeout_s=ADMISSION_TIMEOUT_S)
        self.casts = [Transaction.create(
            SigningKey.generate(), chain_id=network.chain_id, nonce=1, expiry_height=10**6,
            service="vote", method="cast",
            args={"poll_id": ADMISSION_POLL_ID, "ballot": raw.decode()}).encode()
            for raw, _ in made]

    def sign(self, method: str, args: dict[str, Any]) -> bytes:
        """Return the organiser's next `vote` transaction, encoded."""
        self.nonce += 1
        return Transaction.create(self.organiser, chain_id=self.network.chain_id,
                                  nonce=self.nonce, expiry_height=10**6, service="vote",
                                  method=method, args=args).encode()

    def commit(self, raws: list[bytes]) -> None:
        """Submit the organiser's transactions and wait until each one is committed."""
        for admission in self.client.submit_batch(raws):
            if admission["code_name"] != "OK":
                raise LocalError(f"setup tx refused: {admission['log']}")
        for raw in raws:
            result = self.client.wait_for_commit(Transaction.decode(raw).hash())
            if result.get("result", {}).get("code_name") != "OK":
                raise LocalError(f"setup tx failed: {result}")


def noop(phase: str, done: int, total: int) -> None:
    """Report no progress."""


async def _poll_status(url: str, stop: asyncio.Event) -> list[tuple[float, float]]:
    """GET /v1/status every STATUS_PERIOD_S until `stop`; return (sent at, latency s)."""
    samples: list[tuple[float, float]] = []
    async with httpx.AsyncClient(base_url=url, timeout=ADMISSION_TIMEOUT_S) as client:
        while not stop.is_set():
            sent = time.perf_counter()
            response = await client.get("/v1/status")
            response.raise_for_status()
            samples.append((sent, time.perf_counter() - sent))
            await asyncio.sleep(max(0.0, STATUS_PERIOD_S - samples[-1][1]))
    return samples


async def _admit_ballots(url: str, casts: list[bytes]) -> dict[str, Any]:
    """Post the ballots in one batch while polling the status; return the timings."""
    stop = asyncio.Event()
    poller = asyncio.create_task(_poll_status(url, stop))
    await asyncio.sleep(1.0)  # an idle baseline first
    async with httpx.AsyncClient(base_url=url, timeout=ADMISSION_TIMEOUT_S) as client:
        started = time.perf_counter()
        response = await client.post("/v1/txs/batch", content=encode(casts),
                                     headers={"content-type": "application/cbor"})
        response.raise_for_status()
        admitted_s = time.perf_counter() - started
        refused = [item["log"] for item in response.json()["results"]
                   if item["code_name"] != "OK"]
        if refused:
            raise LocalError(f"{len(refused)} ballots refused, e.g. {refused[0]}")
        while True:
            turnout = (await client.get(f"/v1/query/vote/turnout?poll_id="
                                        f"{ADMISSION_POLL_ID}")).json()
            if turnout["result"]["ballots"] == len(casts):
                break
            await asyncio.sleep(STATUS_PERIOD_S)
        committed_s = time.perf_counter() - started
    stop.set()
    samples = await poller
    during = sorted(latency for sent, latency in samples if sent >= started)
    idle = sorted(latency for sent, latency in samples if sent < started)
    return {"admitted_s": round(admitted_s, 2), "committed_s": round(committed_s, 2),
            "status_requests": len(during),
            "status_ms_idle_p50": _ms(compute_percentile(idle, 0.5)),
            "status_ms_p50": _ms(compute_percentile(during, 0.5)),
            "status_ms_p99": _ms(compute_percentile(during, 0.99)),
            "status_ms_max": _ms(during[-1] if during else None)}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def check_cometbft_installed() -> None:
    """Refuse a CometBFT run without the CometBFT binary or the ABCI bindings, naming the
    script that installs both."""
    from seoulchain.node.abci import find_cometbft, load_abci_types

    find_cometbft()
    load_abci_types()


def time_one_ballot() -> float:
    """Return the seconds this process takes to make one ballot of the bench's questions."""
    trustee = generate_trustee_key(BELENIOS_2048)
    election = make_election(uuid="SeouLBench123456", name="bench", description="bench",
                             group=BELENIOS_2048, questions=QUESTIONS,
                             public_key=combine_trustee_keys(BELENIOS_2048, [trustee.public]))
    start = time.perf_counter()
    create_ballot(election, generate_credential(), PLAINTEXTS[0])
    return time.perf_counter() - start


def estimate_open_blocks(ballots: int, workers: int, block_interval_s: float) -> int:
    """Return how many blocks after its creation a poll must open when a block comes every
    `block_interval_s`: long enough to make `ballots` credentials and ballots first."""
    rounds = math.ceil(ballots / min(workers, os.cpu_count() or 1))
    setup_s = SETUP_ESTIMATE_FACTOR * rounds * time_one_ballot() + SETUP_EXTRA_S
    return ADMISSION_OPEN_BLOCKS + math.ceil(setup_s / block_interval_s)


def run_admission_bench(ballots: int = 200, *, workers: int | None = None,
                        engine: OtherEngine | None = None) -> dict[str, Any]:
    """Measure GET /v1/status latency while a node admits and commits `ballots` ballots,
    under the built-in engine or `engine` (bench/cometbft.py's `COMETBFT`)."""
    workers = (os.cpu_count() or 1) if workers is None else workers
    if not 1 <= ballots <= ADMISSION_BALLOTS_MAX:
        raise LocalError(f"an admission run posts 1 to {ADMISSION_BALLOTS_MAX} ballots (one "
                         f"batch request), got {ballots}")
    if engine is not None:
        check_cometbft_installed()
    organiser = SigningKey.generate()
    figures: dict[str, Any] = {"ballots": ballots, "cpus": os.cpu_count(),
                               "engine": "builtin" if engine is None else engine.name}
    network_class = LocalNetwork if engine is None else engine.network_class
    with tempfile.TemporaryDirectory(prefix="seoulchain-admission-") as root, \
            network_class.create(Path(root), validators=1, chain_id="seoul-admission",
                                 roles={"vote.organiser": (organiser.public_key,)}) as network:
        open_blocks = ADMISSION_OPEN_BLOCKS
        if engine is not None:
            engine.prepare(network, None, 1)  # CometBFT's home, default settings
            open_blocks = estimate_open_blocks(
                ballots, workers, engine.get_timeout_commit_ms(network) / 1000)
        network.start(0)
        network.wait_for_height(1, timeout_s=NODE_START_TIMEOUT_S)
        chain = AdmissionChain(network, organiser, ballots, workers, open_blocks)
        figures["open_blocks"] = open_blocks
        figures["load_average_start"] = [round(value, 2) for value in os.getloadavg()]
        figures.update(asyncio.run(_admit_ballots(network.urls[0], chain.casts)))
        figures["load_average_end"] = [round(value, 2) for value in os.getloadavg()]
        chain.client.close()
    return figures


def main(argv: list[str]) -> int:
    """Run the benchmark for BALLOTS from the command line; print JSON."""
    if len(argv) == 3 and argv[1] == "--admission":
        print(json.dumps(run_admission_bench(int(argv[2])), indent=2))
        return 0
    if len(argv) != 2:
        print("usage: python -m seoulchain.bench.voting [--admission] BALLOTS",
              file=sys.stderr)
        return 2
    print(json.dumps(run_voting_bench(int(argv[1])), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
