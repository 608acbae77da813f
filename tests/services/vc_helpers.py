"""Shared set-up of vc tests: a chain with a DID registrar, an agency issuer and its DID."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from seoulchain.crypto import SigningKey
from seoulchain.execution.results import TxResult
from seoulchain.ledger.genesis import Genesis
from tests.conftest import LocalChain, make_genesis, make_key

REGISTRAR_ROLE = "did.registrar"
RESIDENCY_ROLE = "vc.issuer.residency"
# The agency's issuing key: genesis grants it the residency issuer role.
AGENCY = make_key(30)
HOLDER = make_key(31)
STRANGER = make_key(32)
LIST_SIZE = 131_072


def make_vc_genesis() -> Genesis:
    """A genesis where key 2 is the governing agency and a DID registrar, and AGENCY may
    issue residency credentials."""
    genesis = make_genesis(make_key(1), make_key(2))
    genesis.roles[REGISTRAR_ROLE] = (make_key(2).public_key,)
    genesis.roles[RESIDENCY_ROLE] = (AGENCY.public_key,)
    return genesis


def make_vc_chain(path: Path) -> LocalChain:
    return LocalChain(path, make_vc_genesis(), make_key(1), make_key(2))


def send(chain: LocalChain, key: SigningKey, service: str, method: str,
         **args: Any) -> TxResult:
    """Commit one transaction signed by `key` and return its result."""
    tx = chain.make_tx(key, service=service, method=method, args=args)
    return chain.commit(tx).execution.results[0]


def create_did(chain: LocalChain, subject: SigningKey) -> str:
    """Create a DID for `subject`'s key (the registrar signs) and return it."""
    result = send(chain, chain.issuer, "did", "create", public_key=subject.public_key,
                  record_commitment=os.urandom(32))
    assert result.ok, result.log
    return str(result.events[0].attributes["did"])


def set_up_issuer(chain: LocalChain, list_id: str = "residency-1",
                  purpose: str = "revocation") -> str:
    """Give AGENCY a DID, register it as a residency issuer, create a status list."""
    did = create_did(chain, AGENCY)
    result = send(chain, AGENCY, "vc", "register_issuer", did=did, type="residency")
    assert result.ok, result.log
    result = send(chain, AGENCY, "vc", "create_status_list", list_id=list_id, issuer=did,
                  purpose=purpose, size=LIST_SIZE)
    assert result.ok, result.log
    return did
