"""Role history: whether a key held a role at a past height, through grants and revokes."""

from __future__ import annotations

from typing import Any

import pytest

from seoulchain.crypto import SigningKey
from seoulchain.errors import LocalError
from seoulchain.execution.service import (
    AUTH_NAMESPACE,
    ROLE_PERIODS_MAX,
    get_role_history,
    held_role_at,
    record_role_grant,
    record_role_revoke,
)
from seoulchain.execution.state import Overlay, ServiceState
from tests.conftest import LocalChain, make_key
from tests.services.gov_helpers import propose

ROLE = "vc.issuer.residency"
HOLDER = make_key(40)


def change_role(chain: LocalChain, kind: str, key: SigningKey = HOLDER) -> int:
    """Pass a one-member governance proposal to grant or revoke ROLE; return its height."""
    result = propose(chain, chain.issuer, kind, role=ROLE, public_key=key.public_key)
    assert result.ok, result.log
    return chain.engine.height


def history(chain: LocalChain, height: int | None = None) -> dict[str, Any]:
    args: dict[str, Any] = {"role": ROLE, "public_key": HOLDER.public_key.hex()}
    if height is not None:
        args["height"] = height
    return chain.engine.query("gov", "role_history", args)


def test_held_role_at_covers_each_period_from_grant_until_revoke() -> None:
    periods = [[3, 7], [10, None]]
    assert [held_role_at(periods, height) for height in (2, 3, 6, 7, 9, 10, 99)] == \
        [False, True, True, False, False, True, True]
    assert not held_role_at([], 5)


def test_grant_revoke_and_regrant_are_each_recorded_with_their_height(
        chain: LocalChain) -> None:
    granted = change_role(chain, "grant_role")
    chain.commit()
    revoked = change_role(chain, "revoke_role")
    regranted = change_role(chain, "grant_role")
    answer = history(chain)
    assert answer["periods"] == [{"granted_height": granted, "revoked_height": revoked},
                                 {"granted_height": regranted, "revoked_height": None}]
    assert answer["held"] and answer["height"] == chain.engine.height
    assert history(chain, granted - 1)["held"] is False
    assert history(chain, granted)["held"] is True
    assert history(chain, revoked - 1)["held"] is True
    assert history(chain, revoked)["held"] is False
    assert history(chain, regranted)["held"] is True


def test_genesis_roles_are_held_from_height_zero(chain: LocalChain) -> None:
    answer = chain.engine.query("gov", "role_history",
                                {"role": "notary.issuer",
                                 "public_key": chain.issuer.public_key.hex(), "height": 0})
    assert answer["held"] is True
    assert answer["periods"] == [{"granted_height": 0, "revoked_height": None}]


def test_a_key_never_granted_has_an_empty_history(chain: LocalChain) -> None:
    answer = history(chain, 0)
    assert answer["periods"] == [] and answer["held"] is False


def test_a_height_past_the_tip_is_refused(chain: LocalChain) -> None:
    chain.commit()
    with pytest.raises(LocalError, match="past the latest committed height 1"):
        history(chain, 2)


def test_a_role_history_is_bounded_and_refuses_a_second_open_period() -> None:
    auth = ServiceState(Overlay(EmptyState()), AUTH_NAMESPACE)
    key = HOLDER.public_key
    record_role_grant(auth, ROLE, key, 1)
    with pytest.raises(LocalError, match="already holds"):
        record_role_grant(auth, ROLE, key, 2)
    for height in range(2, 2 * ROLE_PERIODS_MAX, 2):
        record_role_revoke(auth, ROLE, key, height)
        record_role_grant(auth, ROLE, key, height + 1)
    assert len(get_role_history(auth, ROLE, key)) == ROLE_PERIODS_MAX
    record_role_revoke(auth, ROLE, key, 10_000)
    with pytest.raises(LocalError, match="grant a new key"):
        record_role_grant(auth, ROLE, key, 10_001)
    assert len(get_role_history(auth, ROLE, key)) == ROLE_PERIODS_MAX


class EmptyState:
    """Committed state with nothing in it."""

    def get_state(self, key: bytes) -> bytes | None:
        return None
