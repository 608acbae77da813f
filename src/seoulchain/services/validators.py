"""Validators: change the validator set; a change decided in block h takes effect at h+2.

An official holding `validators.admin` (granted in genesis; k-of-n governance among agencies
builds on this) sets a validator's voting power — a new key joins, power 0 removes it. The
service records the request under `validators/pending`; at the end of the block the engine
applies all pending changes to the set for height h+2 and records it in state, so the
headers' `validators_hash` / `next_validators_hash` let anyone follow the set. A change that
would leave the set empty or too large is refused by the engine and changes nothing.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from seoulchain.execution.service import Service, StrictArgs, TxContext, tx_method
from seoulchain.ledger.types import PUBLIC_KEY_BYTES, VALIDATOR_NAME_CHARS_MAX

ADMIN_ROLE = "validators.admin"
PENDING_KEY = b"pending"
# Voting power is bounded so that sums stay far inside 64-bit integers (as CometBFT).
POWER_MAX = 2**50


class SetValidatorArgs(StrictArgs):
    public_key: Annotated[bytes, Field(min_length=PUBLIC_KEY_BYTES, max_length=PUBLIC_KEY_BYTES)]
    power: Annotated[int, Field(ge=0, le=POWER_MAX)]
    name: Annotated[str, StringConstraints(max_length=VALIDATOR_NAME_CHARS_MAX)] = ""


class ValidatorsService(Service):
    """Requests validator set changes; the engine applies them at the end of the block."""

    name = "validators"

    @tx_method(args=SetValidatorArgs, roles={ADMIN_ROLE})
    def set_validator(self, ctx: TxContext, args: SetValidatorArgs) -> None:
        """Set a validator's power for height h+2 (0 removes it)."""
        pending = ctx.state.get(PENDING_KEY) or []
        pending = [item for item in pending if item[0] != args.public_key]
        pending.append([args.public_key, args.power, args.name])
        ctx.state.set(PENDING_KEY, pending)
        ctx.emit("validators.changed", public_key=args.public_key, power=args.power,
                 effective_in_blocks=2)
