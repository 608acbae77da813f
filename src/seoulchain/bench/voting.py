"""Voting benchmark: ballot size, ballot verification rate, and tally time for N ballots.

Sets up a BELENIOS-2048 election of the shape of a city consultation (question 1: pick 0
or 1 of 2; question 2: pick 1 or 2 of 3, or vote blank — 6 encrypted choices per ballot)
with `trustees` n-of-n trustees and `ballots` voters, makes one ballot per voter, then times
what validators and tallying parties do: `verify_ballot` on each (the admission check),
the homomorphic tally, each trustee's partial decryption, the check of every partial
decryption and the result. The result is checked against the plaintexts, so a broken run
cannot report figures. Figures are measured, never asserted in tests.

Run: `python -m seoulchain.bench.voting BALLOTS` prints the figures as JSON.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from typing import Any

from seoulchain.errors import LocalError
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
    generate_credential,
    generate_trustee_key,
    make_election,
    verify_ballot,
    verify_result,
)
from seoulchain.voting.trustees import TRUSTEES_MAX

BALLOTS_MAX = 100_000  # beyond this a run takes hours on one core
QUESTIONS = [Question("Build the tram line?", ("Yes", "No"), 0, 1),
             Question("Which parks first?", ("Han river", "Namsan", "Bukhansan"), 1, 2,
                      blank=True)]
PLAINTEXTS = [[[1, 0], [0, 1, 0, 0]], [[0, 1], [0, 1, 1, 0]], [[0, 0], [1, 0, 0, 0]],
              [[1, 0], [0, 0, 1, 1]]]


def _elapsed_ms(start: float) -> float:
    """Return milliseconds since `start` (a perf_counter reading), rounded."""
    return round((time.perf_counter() - start) * 1000, 2)


def run_voting_bench(ballots: int, *, trustees: int = 2, seed: int = 0) -> dict[str, Any]:
    """Measure ballot creation, verification and the whole tally for `ballots` voters."""
    if not 1 <= ballots <= BALLOTS_MAX or not 1 <= trustees <= TRUSTEES_MAX:
        raise LocalError(f"ballots must be 1..{BALLOTS_MAX} and trustees 1..{TRUSTEES_MAX}")
    rng = random.Random(seed)
    group = BELENIOS_2048
    keys = [generate_trustee_key(group) for _ in range(trustees)]
    election = make_election(uuid="SeouLBench123456", name="bench", description="bench",
                             group=group, questions=QUESTIONS,
                             public_key=combine_trustee_keys(group, [key.public for key in keys]))
    credentials = [generate_credential() for _ in range(ballots)]
    public = PublicCredentials({compute_public_credential(group, election.uuid, credential): 1
                                for credential in credentials})
    plaintexts = [rng.choice(PLAINTEXTS) for _ in range(ballots)]
    created, create_ms = [], []
    for credential, plaintext in zip(credentials, plaintexts, strict=True):
        start = time.perf_counter()
        created.append(create_ballot(election, credential, plaintext).raw)
        create_ms.append(_elapsed_ms(start))
    verified, verify_ms = [], []
    for raw in created:
        start = time.perf_counter()
        verified.append(verify_ballot(election, raw, public))
        verify_ms.append(_elapsed_ms(start))
    figures: dict[str, Any] = {
        "group": group.name, "ballots": ballots, "trustees": trustees,
        "choices_per_ballot": sum(question.choice_count for question in QUESTIONS),
        "ballot_bytes_mean": round(statistics.fmean(len(raw) for raw in created)),
        "create_ms_median": statistics.median(create_ms),
        "verify_ms_median": statistics.median(verify_ms),
        "verify_ballots_per_s": round(1000 / statistics.median(verify_ms), 1),
    }
    figures.update(_time_tally(election, verified, keys, plaintexts))
    figures["verify_and_tally_s"] = round(
        (sum(verify_ms) + figures["tally_ms"] + figures["decrypt_ms_per_trustee"] * trustees
         + figures["verify_decryptions_and_result_ms"]) / 1000, 2)
    return figures


def _time_tally(election: Election, verified: list[VerifiedBallot], keys: list[TrusteeKeyPair],
                plaintexts: list[list[list[int]]]) -> dict[str, Any]:
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
    return {"tally_ms": tally_ms, "decrypt_ms_per_trustee": round(decrypt_ms, 2),
            "verify_decryptions_and_result_ms": check_ms}


def main(argv: list[str]) -> int:
    """Run the benchmark for BALLOTS from the command line; print JSON."""
    if len(argv) != 2:
        print("usage: python -m seoulchain.bench.voting BALLOTS", file=sys.stderr)
        return 2
    print(json.dumps(run_voting_bench(int(argv[1])), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
