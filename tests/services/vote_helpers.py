"""A poll on an in-process chain: trustees, credentials, ballots, tally and decryptions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seoulchain.crypto import SigningKey
from seoulchain.execution.results import ResultCode, TxResult
from seoulchain.voting import (
    BELENIOS_2048,
    EncryptedTally,
    compute_partial_decryption,
    compute_public_credential,
    compute_result,
    create_ballot,
    dump_result,
    generate_credential,
    generate_trustee_key,
    parse_election,
    parse_encrypted_tally,
    parse_partial_decryption,
)
from seoulchain.voting.ballot import sign_ballot
from seoulchain.voting.credential import derive_credential_secret
from seoulchain.voting.jsonform import dump_json
from tests.conftest import LocalChain, make_genesis, make_key

ROLE = "vote.organiser"
# The organiser's voter register kept off chain, committed to by hash.
LIST_HASH = bytes.fromhex("5e" * 32)
QUESTIONS = [{"question": "Which park projects should the district fund?",
              "answers": ["Playground", "Bike lane", "Library garden"], "min": 1, "max": 2},
             {"question": "Extend the night bus?", "answers": ["Yes", "No"], "min": 1,
              "max": 1, "blank": True}]


def make_vote_chain(path: Path) -> LocalChain:
    """A one-validator chain where key 2 organises polls; keys 5 and 6 are trustees."""
    validator, organiser = make_key(1), make_key(2)
    genesis = make_genesis(validator, organiser)
    genesis.roles[ROLE] = (organiser.public_key,)
    return LocalChain(path, genesis, validator, organiser)


def send(chain: LocalChain, method: str, key: SigningKey | None = None,
         **args: Any) -> TxResult:
    """Commit one vote tx and return its result; a tx the mempool refuses (a ballot that
    fails its checks never enters a block) comes back as that refusal, nothing committed."""
    tx = chain.make_tx(key, service="vote", method=method, args=args)
    check = chain.engine.check_tx(tx.encode())
    if not check.ok:
        chain.nonces[tx.signer] = tx.nonce - 1  # the tx never existed: reuse its nonce
        return TxResult(check.code, check.log)
    return chain.commit(tx).execution.results[0]


def outcome(result: TxResult) -> str:
    return f"{result.code.name}: {result.log}"


def create_args(chain: LocalChain, poll_id: str = "park-2027", **changes: Any
                ) -> dict[str, Any]:
    args: dict[str, Any] = {
        "poll_id": poll_id, "title": "Mapo-gu participatory budget 2027",
        "questions": QUESTIONS, "eligibility": {"kind": "list", "list_hash": LIST_HASH},
        "open_height": chain.engine.height + 3, "close_height": chain.engine.height + 20,
        "trustees": [], "threshold": 1}
    args.update(changes)
    return args


class Poll:
    """A poll on a LocalChain: two trustees (keys 5, 6), credentials, ballots, the tally."""

    def __init__(self, chain: LocalChain, voters: int, poll_id: str = "park-2027",
                 questions: list[dict[str, Any]] | None = None):
        self.chain, self.poll_id = chain, poll_id
        self.trustee_chain_keys = [make_key(5), make_key(6)]
        self.trustee_pairs = [generate_trustee_key(BELENIOS_2048) for _ in range(2)]
        trustees = [{"chain_key": key.public_key,
                     "public_key": dump_json(pair.public.to_json())}
                    for key, pair in zip(self.trustee_chain_keys, self.trustee_pairs,
                                         strict=True)]
        result = send(chain, "create_poll", **create_args(
            chain, poll_id, trustees=trustees, threshold=2,
            questions=questions or QUESTIONS))
        assert result.code == ResultCode.OK, outcome(result)
        self.election = parse_election(self.record()["election"].encode())
        self.credentials = [generate_credential() for _ in range(voters)]
        self.public = [str(compute_public_credential(BELENIOS_2048, self.election.uuid, item))
                       for item in self.credentials]
        if voters:
            added = send(chain, "add_credentials", poll_id=poll_id, credentials=self.public)
            assert added.code == ResultCode.OK, outcome(added)
        while chain.engine.height + 1 < self.record()["open_height"]:
            chain.commit()

    def record(self) -> dict[str, Any]:
        return self.chain.engine.query("vote", "poll", {"poll_id": self.poll_id})

    def ballot(self, voter: int, plaintext: list[list[int]]) -> str:
        return create_ballot(self.election, self.credentials[voter], plaintext).raw.decode()

    def cast(self, ballot: str, key: SigningKey | None = None) -> TxResult:
        return send(self.chain, "cast", key or make_key(40 + len(ballot) % 50),
                    poll_id=self.poll_id, ballot=ballot)

    def close_and_tally(self) -> None:
        assert send(self.chain, "close", poll_id=self.poll_id).code == ResultCode.OK
        while self.record()["tally"] is None:
            result = send(self.chain, "tally", make_key(7), poll_id=self.poll_id)
            assert result.code == ResultCode.OK, outcome(result)

    def tally(self) -> EncryptedTally:
        stored = self.record()["tally"]
        return parse_encrypted_tally(self.election, stored["ciphertexts"].encode(),
                                     stored["num_tallied"], stored["total_weight"])

    def share(self, trustee: int) -> str:
        partial = compute_partial_decryption(self.election, self.tally(),
                                             self.trustee_pairs[trustee].private_key)
        return partial.to_json().decode()

    def decrypt_all(self) -> list[str]:
        shares = [self.share(index) for index in range(2)]
        for key, share in zip(self.trustee_chain_keys, shares, strict=True):
            result = send(self.chain, "decrypt", key, poll_id=self.poll_id, share=share)
            assert result.code == ResultCode.OK, outcome(result)
        return shares

    def expected_result(self, shares: list[str]) -> str:
        partials = [parse_partial_decryption(self.election, share.encode()) for share in shares]
        counts = compute_result(self.election, self.tally(),
                                [pair.public for pair in self.trustee_pairs], partials)
        return dump_result(counts).decode()


YES, NO = [0, 1, 0], [0, 0, 1]  # the blank-allowed question: [blank, yes, no]


def resign(poll: Poll, voter: int, unsigned: dict[str, Any]) -> str:
    """Sign a (tampered) ballot body with the voter's own credential, as a cheating voter."""
    secret = derive_credential_secret(BELENIOS_2048, poll.election.uuid,
                                      poll.credentials[voter])
    return dump_json(sign_ballot(BELENIOS_2048, secret, unsigned))


