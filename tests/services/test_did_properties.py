"""DIDs, property: over any sequence of rotations, controller changes, record replacements
and deactivation, signed by any mix of current, retired and foreign keys, an update succeeds
exactly when a current key of the controller signs it (a registrar too, for records), and
resolution as of every height gives the document that height ended with.

The service runs as the engine runs it — each transaction in a child overlay, merged only if
it succeeds — against an independent model that keeps a snapshot per height.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seoulchain.codec import decode
from seoulchain.crypto import SigningKey
from seoulchain.crypto.multikey import decode_multikey
from seoulchain.execution.service import AUTH_NAMESPACE, ServiceError, TxContext, compute_role_key
from seoulchain.execution.state import Overlay, ServiceState
from seoulchain.services.did import (
    KEYS_PER_DID_MAX,
    REGISTRAR_ROLE,
    DidService,
    compute_did,
)

KEYS = [SigningKey(bytes([index]) * 32).public_key for index in range(30, 42)]
BOSS_KEY = SigningKey(bytes([50]) * 32).public_key
REGISTRAR = SigningKey(bytes([51]) * 32).public_key
SIGNERS = [*KEYS, BOSS_KEY, REGISTRAR]
SUBJECT_TX, BOSS_TX = b"\x01" * 32, b"\x02" * 32
DID, BOSS = compute_did(SUBJECT_TX), compute_did(BOSS_TX)
GENESIS_TIME_MS = 1_700_000_000_000


class MemoryReader:
    """Committed state held in a dict (empty: all state lives in the block overlay)."""

    def get_state(self, key: bytes) -> bytes | None:
        return None


class Harness:
    """The did service over an in-memory state, one operation per transaction."""

    def __init__(self) -> None:
        self.service = DidService()
        self.block = Overlay(MemoryReader())
        ServiceState(self.block, AUTH_NAMESPACE).set(compute_role_key(REGISTRAR_ROLE, REGISTRAR),
                                                     True)
        self.height = 1
        self.counter = 0

    def run(self, signer: bytes, method: str, tx_hash: bytes | None = None,
            **args: Any) -> bool:
        """Apply one transaction; return whether it succeeded."""
        self.counter += 1
        spec = self.service.methods[method]
        tx_state = self.block.child()
        ctx = TxContext(state=ServiceState(tx_state, "did"),
                        auth=ServiceState(tx_state, AUTH_NAMESPACE), signer=signer,
                        height=self.height, time_ms=GENESIS_TIME_MS + self.height * 1000,
                        tx_hash=tx_hash or self.counter.to_bytes(32, "big"),
                        service_name="did")
        try:
            spec.handler(self.service, ctx, spec.args.model_validate(args))
        except ServiceError:
            return False
        tx_state.merge_into(self.block)
        return True

    def entries(self) -> list[tuple[bytes, Any]]:
        """Return the service's state as `seoulchain audit` gives it: keys in order."""
        return sorted((key[len(b"did/"):], decode(value)) for key, value in
                      self.block.writes.items() if key.startswith(b"did/") and value)

    def resolve(self, height: int) -> dict[str, Any]:
        return self.service.run_query(ServiceState(self.block, "did"), "resolve",
                                      {"did": DID, "height": height})


@dataclass
class Model:
    """What the DID should be: its keys by number, controller, and a snapshot per height."""

    keys: dict[int, bytes] = field(default_factory=lambda: {1: KEYS[0]})
    next_index: int = 2
    controller: str = DID
    deactivated: bool = False
    commitments: int = 1
    snapshots: dict[int, tuple[Any, ...]] = field(default_factory=dict)

    def may_update(self, signer: bytes) -> bool:
        """The controller rule: a current key of the controller, on an active DID."""
        allowed = set(self.keys.values()) if self.controller == DID else {BOSS_KEY}
        return not self.deactivated and signer in allowed

    def snapshot(self) -> tuple[Any, ...]:
        return (tuple(sorted(self.keys.items())), self.controller, self.deactivated)


def apply(harness: Harness, model: Model, operation: tuple[Any, ...]) -> None:
    """Run one operation on both; the service must succeed exactly when the model says."""
    kind, signer_index, key_index, retire, _ = operation
    signer = SIGNERS[signer_index]
    if kind == "rotate":
        new_key = KEYS[key_index]
        retire_index = retire or None
        kept = {index: key for index, key in model.keys.items() if index != retire_index}
        expected = (model.may_update(signer) and new_key not in model.keys.values()
                    and (retire_index is None or retire_index in model.keys)
                    and len(kept) < KEYS_PER_DID_MAX)
        args: dict[str, Any] = {"did": DID, "new_public_key": new_key}
        if retire_index is not None:
            args["retire_key_id"] = f"key-{retire_index}"
        assert harness.run(signer, "rotate", **args) == expected
        if expected:
            model.keys = {**kept, model.next_index: new_key}
            model.next_index += 1
    elif kind == "set_controller":
        target = BOSS if model.controller == DID else DID
        expected = model.may_update(signer)
        assert harness.run(signer, "set_controller", did=DID, controller=target) == expected
        if expected:
            model.controller = target
    elif kind == "deactivate":
        expected = model.may_update(signer)
        assert harness.run(signer, "deactivate", did=DID) == expected
        if expected:
            model.deactivated, model.keys = True, {}
    else:
        expected = not model.deactivated and (signer == REGISTRAR or model.may_update(signer))
        commitment = (model.commitments + 1).to_bytes(32, "big")
        assert harness.run(signer, "supersede_record", did=DID, new_commitment=commitment,
                           reason="update") == expected
        model.commitments += expected


def resolved_snapshot(answer: dict[str, Any]) -> tuple[Any, ...] | None:
    """Return a resolution result in the model's terms, or None for notFound."""
    document = answer["didDocument"]
    if document is None:
        return None
    keys = tuple(sorted((int(method["id"].rpartition("-")[2]),
                         decode_multikey(method["publicKeyMultibase"]))
                        for method in document["verificationMethod"]))
    assert document["authentication"] == document["assertionMethod"] == \
        [method["id"] for method in document["verificationMethod"]]
    return (keys, document["controller"], answer["didDocumentMetadata"]["deactivated"])


OPERATIONS = st.lists(st.tuples(
    st.sampled_from(["rotate", "rotate", "set_controller", "deactivate", "supersede"]),
    st.integers(0, len(SIGNERS) - 1), st.integers(0, len(KEYS) - 1), st.integers(0, 6),
    st.booleans()), max_size=24)


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(OPERATIONS)
def test_updates_follow_the_controller_rule_and_every_height_resolves_as_it_ended(
        operations: list[tuple[Any, ...]]) -> None:
    harness, model = Harness(), Model()
    assert harness.run(REGISTRAR, "create", BOSS_TX, public_key=BOSS_KEY,
                       record_commitment=b"\xbb" * 32)
    assert harness.run(REGISTRAR, "create", SUBJECT_TX, public_key=KEYS[0],
                       record_commitment=(1).to_bytes(32, "big"))
    model.snapshots[harness.height] = model.snapshot()
    for operation in operations:
        apply(harness, model, operation)
        model.snapshots[harness.height] = model.snapshot()
        if operation[4]:  # the next operations go into the next block
            harness.height += 1
    assert harness.service.check_invariants(harness.entries()) == []
    assert resolved_snapshot(harness.resolve(0)) is None
    expected = None
    for height in range(1, harness.height + 2):
        expected = model.snapshots.get(height, expected)
        assert resolved_snapshot(harness.resolve(height)) == expected, height


def test_invariants_report_a_tampered_history() -> None:
    harness = Harness()
    assert harness.run(REGISTRAR, "create", SUBJECT_TX, public_key=KEYS[0],
                       record_commitment=b"\x01" * 32)
    harness.height += 1
    assert harness.run(KEYS[0], "rotate", did=DID, new_public_key=KEYS[1])
    assert harness.run(REGISTRAR, "supersede_record", did=DID, new_commitment=b"\x02" * 32,
                       reason="correction")
    entries = harness.entries()
    assert harness.service.check_invariants(entries) == []
    head_key = b"did/" + DID.encode()
    head = dict(entries)[head_key]
    head["commitments"][0]["superseded_by"] = b"\x03" * 32
    second = b"ver/" + DID.encode() + b"/00000002"
    moved = {**dict(entries)[second], "height": 0}
    tampered = sorted({**dict(entries), head_key: head, second: moved}.items())
    assert harness.service.check_invariants(tampered) == [
        f"{DID}: version heights out of order or too many versions",
        f"{DID}: the record-commitment chain is broken"]
    assert harness.service.check_invariants([(second, moved)]) == [
        f"{DID} has versions but no head"]
