"""The demo poll is a 2-of-3 threshold poll: three agencies' trustees run the key ceremony,
two of them decrypt, `vote verify` passes, and a rerun after a crash at any step resumes
without failing or sending anything twice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from seoulchain.cli.vote import read_threshold_key
from seoulchain.client import demo_voting
from seoulchain.client.demo_voting import (
    DECRYPTING_AGENCIES,
    POLL_ID,
    THRESHOLD_PARAMETERS_FILE,
    TRUSTEE_AGENCIES,
    load_decryption_key,
    seed_poll,
)
from seoulchain.client.voting import fetch_poll_data, make_engine_reader, verify_poll
from seoulchain.errors import LocalError, RemoteError
from seoulchain.voting import get_group
from tests.client.test_demo import make_demo_chain
from tests.client.test_demo_voting_cometbft import CometLikeClient
from tests.conftest import LocalChain

VOTERS = 4
# Roles (propose + 2 approvals), create, credentials, 5 ballots (the first voter votes
# twice), close, tally, 2 decryptions, the result.
SEED_TXS = 3 + 2 + 5 + 2 + 2 + 1


class CrashingClient(CometLikeClient):
    """Loses the node (RemoteError) once before committing each tx numbered in
    `crash_before`, counting every tx committed since the chain began."""

    def __init__(self, chain: LocalChain, crash_before: set[int]):
        super().__init__(chain)
        self.crash_before = crash_before
        self.committed = 0

    def submit_batch(self, raws: list[bytes]) -> list[dict[str, Any]]:
        for raw in raws:
            if self.committed + 1 in self.crash_before:
                self.crash_before.remove(self.committed + 1)
                raise RemoteError("the node went away")
            super().submit_batch([raw])
            self.committed += 1
        return [{"code": 0, "log": ""} for _ in raws]


class Demo:
    """A one-validator demo chain with the agencies' keys, seeded from a tmp directory."""

    def __init__(self, tmp_path: Path):
        self.chain, self.keys = make_demo_chain(tmp_path)
        self.keys_dir, self.docs = tmp_path / "keys", tmp_path / "docs"

    def seed(self, client: CometLikeClient, lines: list[str] | None = None) -> int:
        """Run the demo poll's seeding once; return the transactions it sent."""
        return seed_poll(client, self.keys, self.keys_dir, 3, self.docs,  # type: ignore[arg-type]
                         (lines if lines is not None else []).append, voters=VOTERS)


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Demo]:
    """A demo chain whose clients make a block whenever its status is read."""
    monkeypatch.setattr(demo_voting, "OPEN_POLL_S", 0.0)
    made = Demo(tmp_path)
    yield made
    made.chain.store.close()


def assert_decrypted_by_two_of_three(demo: Demo) -> None:
    """The poll is 2 of 3, Mapo-gu and Jongno-gu decrypted, and it verifies from chain."""
    poll = fetch_poll_data(make_engine_reader(demo.chain.engine), POLL_ID)
    assert poll.poll["threshold"] == 2
    assert [item["chain_key"] for item in poll.poll["trustees"]] == [
        demo.keys[agency].public_key.hex() for agency in TRUSTEE_AGENCIES]
    assert poll.poll["threshold_parameters"] == (
        demo.keys_dir / THRESHOLD_PARAMETERS_FILE).read_text().strip()
    assert [share is not None for share in poll.shares] == [False, True, True]
    assert poll.poll["credentials_count"] == VOTERS and poll.poll["ballots_count"] == 5
    steps = dict(verify_poll(poll).steps)
    assert steps["election"].startswith("threshold 2 of 3")
    assert steps["decryptions"] == "2 of 3 partial decryptions, each with valid proofs"
    assert "combined with Lagrange coefficients" in steps["result"]
    assert steps["ballots"] == "5 ballots with valid proofs; 4 counted, one per credential"


@pytest.mark.slow  # a whole poll: a key ceremony, ballots with proofs, a tally, decryptions
def test_demo_poll_is_2_of_3_and_two_trustees_decrypt_it(demo: Demo) -> None:
    lines: list[str] = []
    assert demo.seed(CometLikeClient(demo.chain), lines) == SEED_TXS
    assert_decrypted_by_two_of_three(demo)
    assert DECRYPTING_AGENCIES == ("mapo-gu", "jongno-gu")
    assert lines[-1].startswith(f"closed, tallied and decrypted {POLL_ID} with 2 of its 3 "
                                f"trustees (mapo-gu and jongno-gu): result ")
    poll = demo.chain.engine.query("vote", "poll", {"poll_id": POLL_ID})
    group = get_group("BELENIOS-2048")
    for agency in TRUSTEE_AGENCIES:  # the unused city hall trustee could decrypt too
        directory = demo.keys_dir / f"vote-trustee-{agency}"
        for name in ("trustee.key", "trustee.dkey"):
            assert (directory / name).stat().st_mode & 0o777 == 0o600
        secret = load_decryption_key(demo.keys_dir, agency, poll)
        # The files `seoulchain vote decrypt --private-key --decryption-key` reads.
        assert read_threshold_key(poll, directory / "trustee.key",
                                  directory / "trustee.dkey") == secret
        public = json.loads(poll["trustees"][TRUSTEE_AGENCIES.index(agency)]["public_key"])
        assert public["public_key"] == str(group.exp_g(secret))
    height = demo.chain.engine.height
    assert demo.seed(CometLikeClient(demo.chain, empty_blocks=False)) == 0
    assert demo.chain.engine.height == height


@pytest.mark.slow  # a whole poll, interrupted six times
def test_demo_poll_resumes_after_a_crash_at_any_step(demo: Demo,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # Room for a rerun to publish credentials an interrupted setup left out before opening.
    monkeypatch.setattr(demo_voting, "COMETBFT_OPEN_MARGIN_BLOCKS", 10)
    # A ceremony torn before its parameters were written is run again, whole.
    torn = demo.keys_dir / "vote-trustee-city-hall" / "trustee.key"
    torn.parent.mkdir(parents=True)
    torn.write_text("not a seed\n")
    # Before the create (the ceremony on disk), between create and credentials, among the
    # ballots, before close, before tally, between the two decryptions, before the result.
    crash_before = {4, 5, 8, 11, 12, 14, 15}
    client = CrashingClient(demo.chain, set(crash_before))
    crashes, lines = 0, list[str]()
    while True:
        try:
            demo.seed(client, lines)
            break
        except RemoteError:
            crashes += 1
            assert crashes <= len(crash_before)
    assert crashes == len(crash_before) and client.committed == SEED_TXS
    assert torn.read_text() != "not a seed\n"
    assert f"published the last {VOTERS} credentials of {POLL_ID}" in lines
    assert_decrypted_by_two_of_three(demo)


def test_decrypting_refuses_trustee_files_of_another_ceremony(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    demo_voting.run_key_ceremony(keys_dir)
    parameters = json.loads((keys_dir / THRESHOLD_PARAMETERS_FILE).read_text())
    poll = {"trustees": [{"public_key": json.dumps(key)}
                         for key in parameters["verification_keys"]]}
    assert load_decryption_key(keys_dir, "mapo-gu", poll) is not None
    (keys_dir / THRESHOLD_PARAMETERS_FILE).unlink()
    demo_voting.run_key_ceremony(keys_dir)  # a new ceremony replaces the trustees' files
    with pytest.raises(LocalError, match=r"holds a key of another ceremony, not that of "
                                         r"trustee 1 \(mapo-gu\) of poll 'mapo-budget-2027'"):
        load_decryption_key(keys_dir, "mapo-gu", poll)
    (keys_dir / "vote-trustee-jongno-gu" / "trustee.dkey").unlink()
    with pytest.raises(LocalError, match="cannot read jongno-gu's trustee files"):
        load_decryption_key(keys_dir, "jongno-gu", poll)


@pytest.mark.slow  # a key ceremony, a tally and two decryptions of an empty poll
def test_a_rerun_after_the_poll_opened_without_its_credentials_casts_none(
        demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    client = CrashingClient(demo.chain, {5})  # create committed, then the node went away
    with pytest.raises(RemoteError):
        demo.seed(client)
    lines: list[str] = []
    demo.seed(client, lines)  # the chain moved past the open height meanwhile
    assert (f"poll {POLL_ID} opened with 0 of {VOTERS} credentials published; only their "
            f"voters cast") in lines
    poll = fetch_poll_data(make_engine_reader(demo.chain.engine), POLL_ID)
    assert poll.poll["ballots_count"] == 0 and poll.poll["result"] is not None
    assert dict(verify_poll(poll).steps)["decryptions"].startswith("2 of 3")
