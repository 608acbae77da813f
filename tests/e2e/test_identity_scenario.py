"""Identity, end to end: a citizen's day through the CLI against a live validator.

The story follows docs/identity.md command by command: the agencies grant the youth desk's
agency an issuer role k of n; the city registrar gives a citizen a DID whose record lives in
the vault; the agency issues a youth-allowance credential as a W3C VC and as an SD-JWT VC;
a desk gets "yes" without seeing the birth date; the credential is revoked and the next
check says "no"; the citizen's record is erased and nothing left, in the vault or on chain,
holds it.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seoulchain.bench.network import LocalNetwork
from seoulchain.cli.exit_codes import EXIT_ANSWER_REFUSED, EXIT_NOT_FOUND
from seoulchain.cli.main import app
from seoulchain.vault import compute_commitment, encode_record
from tests.e2e.conftest import configure_fast

pytestmark = pytest.mark.e2e

# Seconds the single validator gets to make its first block.
START_TIMEOUT_S = 30.0
# The citizen's record: what the vault holds and the chain must never see.
RECORD = {"name": "Kim Minji", "birth_date": "2001-04-17",
          "address": "12 Mapo-daero, Mapo-gu", "phone": "010-5512-0417"}
# The SD-JWT's claims: the birth date is among them, but a youth-allowance answer hides it.
SD_JWT_CLAIMS = {"residence_city": "Seoul", "age_band": "25-29",
                 "birth_date": RECORD["birth_date"], "youth_allowance": True}
ISSUER_ROLE = "vc.issuer.youth-allowance"
STATUS_LIST = "youth-2026"
AUDIENCE = "mapo-gu-youth-desk"

runner = CliRunner()


def run(*args: str, code: int = 0) -> str:
    """Run `seoulchain ARGS` in-process, assert its exit status, return what it printed."""
    result = runner.invoke(app, [str(arg) for arg in args])
    assert result.exit_code == code, (args, result.exit_code, result.output)
    return result.output


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNetwork]:
    """One validator of a devnet whose four agencies govern at k = 3."""
    root = tmp_path_factory.mktemp("identity") / "devnet"
    with LocalNetwork.create(root, 1, configure=configure_fast) as net:
        net.start_all()
        net.wait_for_height(1, timeout_s=START_TIMEOUT_S)
        yield net


@pytest.fixture(scope="module")
def home(network: LocalNetwork) -> Path:
    return network.devnet.root


def get_public_key(home: Path, name: str) -> str:
    """Return the hex public key `keys show` prints for a key of the home."""
    return re.findall(r"\b[0-9a-f]{64}\b", run("keys", "show", "--name", name, "--home", home))[0]


def grant_role(home: Path, role: str, key_name: str) -> None:
    """Grant `role` to a key through governance: city-hall proposes, two agencies approve."""
    public_key = get_public_key(home, key_name)
    proposed = run("gov", "propose", "grant_role", f"role={role}", f"public_key={public_key}",
                   "--home", home)
    proposal = re.search(r"gov\.proposed .*\bproposal=(\d+)", proposed).group(1)  # type: ignore[union-attr]
    run("gov", "approve", proposal, "--key", "mapo-gu", "--home", home)
    assert '"status": "open"' in run("gov", "show", proposal, "--home", home)
    run("gov", "approve", proposal, "--key", "jongno-gu", "--home", home)  # the k-th: 3 of 4
    assert '"status": "passed"' in run("gov", "show", proposal, "--home", home)


def read_did(output: str) -> str:
    return re.findall(r"did:seoul:[1-9A-HJ-NP-Za-km-z]+", output)[0]


def decode_disclosures(presentation: str) -> list[list[object]]:
    """Return the disclosures of an SD-JWT presentation, decoded from base64url."""
    parts = presentation.strip().split("~")[1:-1]
    return [json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
            for part in parts]


def read_vault_files(data_dir: Path) -> bytes:
    """Return the bytes of the vault and its -wal, -shm and -journal files."""
    files = sorted(data_dir.glob("vault.sqlite*"))
    assert data_dir / "vault.sqlite" in files
    return b"".join(path.read_bytes() for path in files)


def test_identity_scenario_a_citizens_day(home: Path, network: LocalNetwork,
                                          tmp_path: Path) -> None:
    """identity: grant, register, issue, ask, revoke, erase (n=1 validator, 4 agencies)."""
    # The agencies grant roles k of n: city hall registers DIDs, Mapo-gu issues allowances.
    grant_role(home, "did.registrar", "operator")
    grant_role(home, ISSUER_ROLE, "mapo-gu")

    # The issuing agency gets a DID of its own, registers as an issuer, creates a list.
    (tmp_path / "agency.json").write_text('{"agency": "Mapo-gu Office"}')
    agency = read_did(run("vault", "register", "--subject-key", "mapo-gu", "--record-file",
                          tmp_path / "agency.json", "--home", home))
    run("tx", "vc", "register_issuer", f"did={agency}", "type=youth-allowance",
        "--key", "mapo-gu", "--home", home)
    run("tx", "vc", "create_status_list", f"list_id={STATUS_LIST}", f"issuer={agency}",
        "purpose=revocation", "size=131072", "--key", "mapo-gu", "--home", home)

    # A citizen: a key, a DID from the registrar, the record in the vault.
    run("keys", "create", "minji", "--home", home)
    (tmp_path / "record.json").write_text(json.dumps(RECORD))
    registered = run("vault", "register", "--subject-key", "minji", "--record-file",
                     tmp_path / "record.json", "--home", home)
    citizen = read_did(registered)
    commitment = re.search(r"commitment ([0-9a-f]{64})", registered).group(1)  # type: ignore[union-attr]
    assert commitment in run("did", "history", citizen, "--home", home)
    opened = json.loads(run("vault", "get", citizen, "--accessor", "officer-17", "--purpose",
                            "youth allowance 2026-0042", "--json", "--home", home))
    assert opened["record"] == RECORD and opened["commitment"] == commitment
    assert compute_commitment(bytes.fromhex(opened["salt"]),
                              encode_record(RECORD)).hex() == commitment

    # The youth-allowance credential, as a W3C VC ...
    card = tmp_path / "allowance.json"
    run("vc", "issue", "--type", "youth-allowance", "--subject", citizen, "--claims",
        '{"youthAllowanceEligible": true, "allowanceProgramme": "Seoul youth allowance 2026"}',
        "--issuer", agency, "--status-list", STATUS_LIST, "--out", card, "--key", "mapo-gu",
        "--home", home)
    assert f"valid: youth-allowance credential of {citizen}" in run(
        "vc", "verify", card, "--type", "youth-allowance", "--home", home)
    status = run("vc", "status", card, "--home", home)
    index = re.search(rf"revocation\s+{STATUS_LIST} #(\d+): clear", status).group(1)  # type: ignore[union-attr]

    # ... and as an SD-JWT VC for the citizen's key, under the same status bit.
    (tmp_path / "claims.json").write_text(json.dumps(SD_JWT_CLAIMS))
    sd_jwt = tmp_path / "allowance.sd-jwt"
    run("eligibility", "issue", "--key", home / "keys" / "mapo-gu.key", "--issuer", agency,
        "--holder", get_public_key(home, "minji"), "--claims", tmp_path / "claims.json",
        "--status-list", STATUS_LIST, "--status-index", index, "--out", sd_jwt,
        "--home", home)

    # The desk asks; the citizen answers; the desk hears yes and never sees the birth date.
    def ask_and_check(name: str, code: int) -> tuple[str, str]:
        request, answer = tmp_path / f"{name}-request.json", tmp_path / f"{name}-answer.txt"
        run("eligibility", "ask", "--preset", "youth-allowance", "--audience", AUDIENCE,
            "--issuer", agency, "--out", request)
        answered = run("eligibility", "answer", request, "--credential", sd_jwt,
                       "--key", home / "keys" / "minji.key", "--out", answer)
        assert "withholds birth_date" in answered
        checked = run("eligibility", "check", request, answer, "--home", home,
                      "--nonce-store", tmp_path / "desk-nonces.json", code=code)
        return answer.read_text(), checked

    answer, checked = ask_and_check("first", 0)
    assert checked.startswith("yes: claims seen: age_band = \"25-29\", residence_city = "
                              "\"Seoul\"")
    disclosures = decode_disclosures(answer)
    assert {disclosure[1] for disclosure in disclosures} == {"residence_city", "age_band"}
    for text in (answer, checked, json.dumps(disclosures)):
        assert RECORD["birth_date"] not in text and "birth_date" not in text

    # The agency revokes the credential: the W3C form is rejected, the desk's next check no.
    run("vc", "revoke", card, "--key", "mapo-gu", "--home", home)
    assert "FAIL  " in run("vc", "verify", card, "--home", home, code=EXIT_ANSWER_REFUSED)
    _, checked = ask_and_check("second", EXIT_ANSWER_REFUSED)
    assert checked.startswith("no: the answer is refused") and "revoked" in checked
    published = tmp_path / f"{STATUS_LIST}.json"
    run("vc", "publish-list", STATUS_LIST, "--out", published, "--key", "mapo-gu",
        "--home", home)
    assert "FAIL  status" in run("vc", "verify", card, "--status-list", published,
                                 "--home", home, code=EXIT_ANSWER_REFUSED)

    # Erasure: the vault forgets the citizen; the commitment on chain opens to nothing.
    data_dir = network.devnet.node_homes[0].data_dir
    assert bytes.fromhex(commitment) in read_vault_files(data_dir)  # its row, before
    run("vault", "erase", citizen, "--yes", "--home", home)
    erased = run("vault", "get", citizen, "--accessor", "officer-17", "--purpose", "appeal",
                 "--home", home, code=EXIT_NOT_FOUND)
    assert "erased" in erased
    assert commitment in run("did", "history", citizen, "--home", home)
    vault_bytes = read_vault_files(data_dir)
    assert bytes.fromhex(commitment) not in vault_bytes
    chain_files = [path for path in sorted(data_dir.rglob("*"))
                   if path.is_file() and not path.name.startswith("vault")]
    assert data_dir / "chain.sqlite" in chain_files  # the block store and the state
    chain_bytes = b"".join(path.read_bytes() for path in chain_files)
    history_json = run("did", "history", citizen, "--json", "--home", home)
    salt = bytes.fromhex(opened["salt"])
    for value in [*RECORD.values(), salt, opened["salt"]]:
        needle = value.encode() if isinstance(value, str) else value
        assert needle not in vault_bytes, value
        assert needle not in chain_bytes, value
        assert needle not in history_json.encode(), value
