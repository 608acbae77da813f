"""The credential desk: a verified holder of the poll's credential type gets one Belenios
credential; every other holder, credential or poll is refused; the chain gets only shuffled
public credentials.

The chain is a LocalChain; the desk reaches it through the HTTP client's own code (an httpx
transport answering `/v1/status` and `/v1/query/...` as the API does).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from click.testing import CliRunner

from seoulchain.cli import common
from seoulchain.cli import vote as cli_vote
from seoulchain.cli.main import app
from seoulchain.client.credentials import (
    CredentialRejected,
    InvalidProof,
    IssuerRoleMissing,
    PresentationRejected,
    Revoked,
    WrongType,
    build_credential,
    build_presentation,
    compute_anchor_hash,
    compute_status_list_url,
)
from seoulchain.client.http import NodeClient
from seoulchain.client.vote_desk import (
    CredentialDesk,
    HolderAlreadyServed,
    PollNotIssuable,
    compute_holder_tag,
    read_register,
)
from seoulchain.credentials import integrity
from seoulchain.credentials.statuslist import build_status_entry
from seoulchain.crypto import SigningKey
from seoulchain.errors import LocalError, StorageError
from seoulchain.voting import BELENIOS_2048, compute_public_credential, parse_election
from seoulchain.voting.credential import check_credential
from tests.client.test_credentials import make_transport
from tests.conftest import LocalChain, make_key
from tests.services import vote_helpers
from tests.services.test_vote_eligibility import RESIDENTS, TRUSTEES, make_chain
from tests.services.vc_helpers import (
    AGENCY,
    HOLDER,
    RESIDENCY_ROLE,
    STRANGER,
    create_did,
    send,
    set_up_issuer,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)
POLL = "ward-budget"
RUNNER = CliRunner()
COMMAND = typer.main.get_command(app)
SECOND_HOLDER = make_key(34)


@dataclass
class Desk:
    chain: LocalChain
    client: NodeClient
    issuer: str
    register: Path
    handed: list[str] = field(default_factory=list)

    def credential(self, holder: str, index: int, key: SigningKey = AGENCY,
                   anchor: bool = True) -> dict[str, Any]:
        """Sign a residency credential for `holder` (revocation index `index`), anchored."""
        status = [build_status_entry(compute_status_list_url("residency-1"), index)]
        unsigned = build_credential("residency", self.issuer, holder,
                                    {"residentOf": "Mapo-gu"}, NOW - timedelta(days=1),
                                    NOW + timedelta(days=365), status)
        credential = integrity.sign(unsigned, key, f"{self.issuer}#key-1", NOW)
        if anchor:
            result = send(self.chain, AGENCY, "vc", "issue", **self.anchor_args(credential,
                                                                                index))
            assert result.ok, result.log
        return credential

    def anchor_args(self, credential: dict[str, Any], index: int) -> dict[str, Any]:
        return {"credential_hash": compute_anchor_hash(credential), "type": "residency",
                "issuer": self.issuer, "status": [{"list_id": "residency-1", "index": index}]}

    def create_poll(self, poll_id: str = POLL, eligibility: dict[str, Any] = RESIDENTS,
                    opens_in: int = 30) -> None:
        result = vote_helpers.send(self.chain, "create_poll", **vote_helpers.create_args(
            self.chain, poll_id, eligibility=eligibility, trustees=TRUSTEES, threshold=1,
            open_height=self.chain.engine.height + opens_in,
            close_height=self.chain.engine.height + opens_in + 10))
        assert result.ok, vote_helpers.outcome(result)

    def open(self, poll_id: str = POLL) -> CredentialDesk:
        return CredentialDesk(self.client, poll_id, self.register)

    def issue(self, credential: dict[str, Any], poll_id: str = POLL) -> Any:
        return self.open(poll_id).issue(credential, self.handed.append, now=NOW)

    def submit(self, batch: list[str]) -> None:
        result = vote_helpers.send(self.chain, "add_credentials", poll_id=POLL,
                                   credentials=batch)
        if not result.ok:
            raise LocalError(result.log)

    def published(self) -> list[str]:
        return self.chain.engine.query("vote", "credentials", {"poll_id": POLL})

    def public_of(self, private: str) -> str:
        poll = self.chain.engine.query("vote", "poll", {"poll_id": POLL})
        uuid = parse_election(poll["election"].encode()).uuid
        return str(compute_public_credential(BELENIOS_2048, uuid, private))


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    chain = make_chain(tmp_path / "desk.sqlite")
    issuer = set_up_issuer(chain)
    client = NodeClient("http://node:1", transport=make_transport(chain))
    yield Desk(chain, client, issuer, tmp_path / "desk" / "ward-budget.json")
    client.close()
    chain.store.close()


def test_an_eligible_holder_gets_a_credential_whose_public_part_alone_reaches_the_chain(
        desk: Desk) -> None:
    holders = [create_did(desk.chain, key) for key in (HOLDER, SECOND_HOLDER)]
    credentials = [desk.credential(holder, index) for index, holder in enumerate(holders)]
    desk.create_poll()
    receipts = [desk.issue(credential) for credential in credentials]
    assert [receipt.queued for receipt in receipts] == [1, 2]
    assert receipts[0].credential_type == "residency"
    assert all(check_credential(private) for private in desk.handed)
    # Below the batch minimum nothing is published; flushing publishes the queue.
    assert desk.open().publish(desk.submit, batch_min=3) == 0
    assert desk.open().publish(desk.submit, batch_min=3, flush=True) == 2
    assert sorted(desk.published()) == sorted(desk.public_of(item) for item in desk.handed)
    # The register keeps salted tags, no subject, no private credential, no queue left.
    text = desk.register.read_text()
    assert not any(holder in text for holder in holders)
    assert not any(private in text for private in desk.handed)
    register = read_register(desk.register)
    assert register["holders"] == sorted(compute_holder_tag(bytes.fromhex(register["salt"]),
                                                            holder) for holder in holders)
    assert register["queue"] == [] and register["published"] == 2
    assert desk.register.stat().st_mode & 0o777 == 0o600


def test_the_same_holder_is_served_once(desk: Desk) -> None:
    holder = create_did(desk.chain, HOLDER)
    first, second = desk.credential(holder, 1), desk.credential(holder, 2)
    desk.create_poll()
    desk.issue(first)
    for credential in (first, second):
        with pytest.raises(HolderAlreadyServed, match=f"already gave {holder}"):
            desk.issue(credential)
    assert len(desk.handed) == 1 and len(read_register(desk.register)["queue"]) == 1


def test_a_credential_of_another_type_is_refused(desk: Desk) -> None:
    credential = desk.credential(create_did(desk.chain, HOLDER), 1)
    desk.create_poll("youth-forum", {"kind": "credential",
                                     "credential_type": "youth-allowance"})
    with pytest.raises(WrongType, match="not youth-allowance"):
        desk.issue(credential, "youth-forum")
    assert desk.handed == []


def test_a_revoked_credential_is_refused(desk: Desk) -> None:
    credential = desk.credential(create_did(desk.chain, HOLDER), 4)
    desk.create_poll()
    result = send(desk.chain, AGENCY, "vc", "set_status", list_id="residency-1", index=4,
                  value=True)
    assert result.ok, result.log
    with pytest.raises(Revoked, match="revoked at height"):
        desk.issue(credential)
    assert desk.handed == [] and not desk.register.exists()


def test_a_credential_from_an_issuer_without_the_role_is_refused(desk: Desk) -> None:
    credential = desk.credential(create_did(desk.chain, HOLDER), 5, anchor=False)
    # The anchor and the role's revocation land in one block: the role was not held there.
    anchor = desk.chain.make_tx(AGENCY, service="vc", method="issue",
                                args=desk.anchor_args(credential, 5))
    revoke = desk.chain.make_tx(desk.chain.issuer, service="gov", method="propose", args={
        "kind": "revoke_role", "deadline_height": desk.chain.engine.height + 10,
        "role": RESIDENCY_ROLE, "public_key": AGENCY.public_key})
    results = desk.chain.commit(anchor, revoke).execution.results
    assert [result.ok for result in results] == [True, True]
    desk.create_poll()
    with pytest.raises(IssuerRoleMissing, match=r"did not hold vc\.issuer\.residency"):
        desk.issue(credential)
    assert desk.handed == []


def test_a_forged_signature_is_refused(desk: Desk) -> None:
    # Signed by a stranger's key under the issuer's method id, then anchored by the issuer.
    credential = desk.credential(create_did(desk.chain, HOLDER), 6, key=STRANGER)
    desk.create_poll()
    with pytest.raises(InvalidProof, match="does not verify"):
        desk.issue(credential)
    tampered = json.loads(json.dumps(desk.credential(create_did(desk.chain, SECOND_HOLDER),
                                                     7)))
    tampered["credentialSubject"]["residentOf"] = "Jongno-gu"
    with pytest.raises(CredentialRejected, match="not anchored"):
        desk.issue(tampered)
    assert desk.handed == []


@pytest.mark.parametrize("phase", ["open", "closed"])
def test_a_poll_past_setup_is_refused(desk: Desk, phase: str) -> None:
    credential = desk.credential(create_did(desk.chain, HOLDER), 1)
    desk.create_poll(opens_in=3)
    record = desk.chain.engine.query("vote", "poll", {"poll_id": POLL})
    while desk.chain.engine.height + 1 < record["open_height"]:
        desk.chain.commit()
    if phase == "closed":
        assert vote_helpers.send(desk.chain, "close", poll_id=POLL).ok
    with pytest.raises(PollNotIssuable, match=f"is {phase} at height"):
        desk.issue(credential)
    assert desk.handed == []


def test_a_poll_open_to_a_list_has_no_desk(desk: Desk) -> None:
    desk.create_poll(eligibility={"kind": "list", "list_hash": vote_helpers.LIST_HASH})
    with pytest.raises(PollNotIssuable, match="list the organiser keeps"):
        desk.open()
    with pytest.raises(PollNotIssuable, match="no poll 'nowhere'"):
        desk.open("nowhere")


def test_a_register_serves_one_poll(desk: Desk) -> None:
    desk.create_poll()
    desk.create_poll("night-bus")
    desk.issue(desk.credential(create_did(desk.chain, HOLDER), 1))
    with pytest.raises(PollNotIssuable, match="register of poll 'ward-budget'"):
        desk.open("night-bus")


def test_a_failed_delivery_records_nothing(desk: Desk) -> None:
    credential = desk.credential(create_did(desk.chain, HOLDER), 1)
    desk.create_poll()

    def lost(private: str) -> None:
        raise OSError("the printer jammed")

    with pytest.raises(OSError, match="jammed"):
        desk.open().issue(credential, lost, now=NOW)
    assert desk.issue(credential).queued == 1


def test_a_batch_the_chain_refused_is_queued_again_and_one_it_took_is_counted(
        desk: Desk) -> None:
    holders = [create_did(desk.chain, key) for key in (HOLDER, SECOND_HOLDER)]
    credentials = [desk.credential(holder, index) for index, holder in enumerate(holders)]
    desk.create_poll()
    for credential in credentials:
        desk.issue(credential)
    # The chain's cap refuses the batch when a credential was revoked meanwhile; the batch
    # stays pending until the next run settles it against the chain.
    assert send(desk.chain, AGENCY, "vc", "set_status", list_id="residency-1", index=0,
                value=True).ok
    with pytest.raises(LocalError, match="but only 1 residency"):
        desk.open().publish(desk.submit, batch_min=1)
    assert len(read_register(desk.register)["pending"]["batch"]) == 2
    assert desk.published() == []
    # Another credential is anchored; the next run finds the refused batch absent from the
    # chain, queues it again and sends it, then crashes after the chain took it.
    assert send(desk.chain, AGENCY, "vc", "issue", **desk.anchor_args(
        desk.credential(create_did(desk.chain, make_key(35)), 9, anchor=False), 9)).ok

    def crash_after_commit(batch: list[str]) -> None:
        desk.submit(batch)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        desk.open().publish(crash_after_commit, batch_min=1)
    assert read_register(desk.register)["pending"] is not None
    # The run after the crash finds the batch on chain and counts it: nothing is sent twice.
    assert desk.open().publish(desk.submit, batch_min=1) == 0
    register = read_register(desk.register)
    assert register["published"] == 2 and register["queue"] == []
    assert register["pending"] is None
    assert sorted(desk.published()) == sorted(desk.public_of(item) for item in desk.handed)


def test_a_presentation_by_the_holder_over_the_desk_challenge_is_served(desk: Desk) -> None:
    holder = create_did(desk.chain, HOLDER)
    credential = desk.credential(holder, 1)
    desk.create_poll()
    challenge = desk.open().get_challenge()
    assert challenge.startswith(f"vote-desk:{POLL}:")
    stolen = build_presentation([credential], holder, STRANGER, f"{holder}#key-1",
                                challenge, "vote-desk", NOW)
    with pytest.raises(PresentationRejected, match="does not verify"):
        desk.issue(stolen)
    elsewhere = build_presentation([credential], holder, HOLDER, f"{holder}#key-1",
                                   challenge, "another-verifier", NOW)
    with pytest.raises(PresentationRejected, match="wrong challenge or domain"):
        desk.issue(elsewhere)
    assert desk.handed == []
    presented = build_presentation([credential], holder, HOLDER, f"{holder}#key-1",
                                   challenge, "vote-desk", NOW)
    assert desk.issue(presented).queued == 1
    with pytest.raises(HolderAlreadyServed):
        desk.issue(credential)


def test_the_desk_commands_issue_refuse_publish_and_report(
        desk: Desk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    holders = [create_did(desk.chain, key) for key in (HOLDER, SECOND_HOLDER)]
    files = []
    for index, holder in enumerate(holders):
        files.append(tmp_path / f"credential-{index}.json")
        files[-1].write_text(json.dumps(desk.credential(holder, index)))
    desk.create_poll()

    def commit(home: Path, node: str | None, key: str, service: str, method: str,
               args: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        tx = desk.chain.make_tx(desk.chain.issuer, service=service, method=method, args=args)
        result = desk.chain.commit(tx).execution.results[0]
        return {"height": desk.chain.engine.height, "hash": tx.hash().hex(),
                "result": {"code": int(result.code), "code_name": result.code.name,
                           "log": result.log}}

    monkeypatch.setattr(common, "open_client", lambda home, node: NodeClient(
        "http://node:1", transport=make_transport(desk.chain)))
    monkeypatch.setattr(cli_vote, "submit_service_tx", commit)
    base = ["vote", "desk"]
    where = ["--register", str(desk.register), "--home", str(tmp_path)]
    issued = RUNNER.invoke(COMMAND, [*base, "issue", POLL, "--credential", str(files[0]),
                                     "--out", str(tmp_path / "voter-0.txt"), *where])
    assert issued.exit_code == 0, issued.output
    assert "1 public credentials queued" in issued.output
    assert check_credential((tmp_path / "voter-0.txt").read_text().strip())
    assert (tmp_path / "voter-0.txt").stat().st_mode & 0o777 == 0o600
    again = RUNNER.invoke(COMMAND, [*base, "issue", POLL, "--credential", str(files[0]),
                                    "--out", str(tmp_path / "voter-0b.txt"), *where])
    assert again.exit_code == 21 and "FAIL  desk: this desk already gave" in again.output
    assert not (tmp_path / "voter-0b.txt").exists()
    taken = RUNNER.invoke(COMMAND, [*base, "issue", POLL, "--credential", str(files[1]),
                                    "--out", str(tmp_path / "voter-0.txt"), *where])
    assert taken.exit_code == 1 and "cannot create" in taken.output
    assert RUNNER.invoke(COMMAND, [*base, "issue", POLL, "--credential", str(files[1]),
                                   "--out", str(tmp_path / "voter-1.txt"),
                                   *where]).exit_code == 0
    waiting = RUNNER.invoke(COMMAND, [*base, "publish", POLL, *where])
    assert waiting.exit_code == 0 and "published 0 public credentials; 2 wait" in \
        waiting.output
    flushed = RUNNER.invoke(COMMAND, [*base, "publish", POLL, "--all", *where])
    assert flushed.exit_code == 0 and "published 2 public credentials; 0 wait" in \
        flushed.output
    status = RUNNER.invoke(COMMAND, [*base, "status", POLL, "--json", *where])
    assert status.exit_code == 0, status.output
    counts = json.loads(status.stdout)
    assert counts.pop("challenge").startswith(f"vote-desk:{POLL}:")
    assert counts == {"poll_id": POLL, "credential_type": "residency", "domain": "vote-desk",
                      "holders": 2, "queued": 0, "pending": 0, "published": 2}
    assert sorted(desk.published()) == sorted(
        desk.public_of((tmp_path / f"voter-{index}.txt").read_text().strip())
        for index in range(2))


def test_a_damaged_register_is_refused(desk: Desk) -> None:
    desk.create_poll()
    desk.register.parent.mkdir(parents=True)
    desk.register.write_text('{"poll_id": "ward-budget"')
    with pytest.raises(StorageError, match="is unreadable"):
        desk.open()
    desk.register.write_text('{"poll_id": "ward-budget"}')
    with pytest.raises(StorageError, match="not a desk register"):
        desk.open()
