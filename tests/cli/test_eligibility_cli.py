"""Eligibility checks from the command line: `seoulchain eligibility issue|ask|answer|check`.

A real node with its HTTP API runs in-process behind the CLI (as in test_service_cli.py):
the issuer is a did:seoul DID registered with the `vc` service, its credential's status
bit lives in a `vc` status list, and `check` reads both through the node.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from seoulchain.cli import common, gov, txs
from seoulchain.cli.exit_codes import EXIT_ANSWER_REFUSED, EXIT_NOT_ELIGIBLE
from seoulchain.cli.main import app
from seoulchain.credentials import sdjwt
from seoulchain.crypto import SigningKey
from seoulchain.node.home import Home, init_home
from seoulchain.node.node import Node
from tests.cli.test_service_cli import InProcessClient, free_port

RUNNER = CliRunner()
LIST_ID = "residency-1"
CLAIMS = {"residence_city": "Seoul", "age_band": "25-29", "birth_date": "1999-04-01",
          "youth_allowance": True}


@dataclass
class Desk:
    """A node with an issuer DID (the operator's key) and its revocation list."""

    node: Node
    root: Path
    did: str
    holder_key: Path
    holder_public: str
    next_index: list[int]

    def run(self, *args: str) -> Any:
        return RUNNER.invoke(app, list(args))

    def on_node(self, *args: str) -> Any:
        return RUNNER.invoke(app, [*args, "--home", str(self.node.home.root)])

    def path(self, name: str) -> Path:
        return self.root / name

    def issue(self, name: str, claims: dict[str, Any] | None = None, *,
              key: str = "operator", did: str | None = None,
              list_id: str = LIST_ID) -> tuple[Path, int]:
        """Issue a credential to the holder at a fresh status index; return file, index."""
        self.next_index[0] += 1
        claims_file = self.path(f"{name}.claims.json")
        claims_file.write_text(json.dumps(claims or CLAIMS))
        out = self.path(f"{name}.sd-jwt")
        issued = self.on_node(
            "eligibility", "issue", "--key", str(self.node.home.root / "keys" / f"{key}.key"),
            "--issuer", did or self.did, "--holder", self.holder_public,
            "--claims", str(claims_file), "--status-list", list_id,
            "--status-index", str(self.next_index[0]), "--out", str(out))
        assert issued.exit_code == 0, issued.output
        return out, self.next_index[0]

    def ask(self, name: str, *options: str) -> Path:
        out = self.path(f"{name}.request.json")
        asked = self.run("eligibility", "ask", "--audience", "mapo-gu-youth-desk",
                         "--issuer", self.did, "--out", str(out),
                         *(options or ("--preset", "youth-allowance")))
        assert asked.exit_code == 0, asked.output
        return out

    def answer(self, request: Path, credential: Path) -> Path:
        out = request.with_suffix(".answer.txt")
        answered = self.run("eligibility", "answer", str(request), "--credential",
                            str(credential), "--key", str(self.holder_key), "--out", str(out))
        assert answered.exit_code == 0, answered.output
        return out

    def check(self, request: Path, answer: Path, *options: str) -> tuple[int, str]:
        checked = self.on_node("eligibility", "check", str(request), str(answer),
                               "--nonce-store", str(self.path("nonces.json")), *options)
        return checked.exit_code, " ".join(checked.stdout.split())


def send(desk_node: Node, *args: str) -> None:
    result = RUNNER.invoke(app, [*args, "--home", str(desk_node.home.root)])
    assert result.exit_code == 0, result.output


def create_issuer_did(node: Node, key_name: str) -> str:
    created = RUNNER.invoke(app, ["did", "create", "--subject-key", key_name, "--commitment",
                                  os.urandom(32).hex(), "--json", "--home",
                                  str(node.home.root)])
    assert created.exit_code == 0, created.output
    return str(json.loads(created.stdout)["did"])


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    """One node for the module: the operator registers its DID as a residency issuer and
    creates revocation list residency-1."""
    root = tmp_path_factory.mktemp("eligibility")
    running = Node(init_home(root / "home", chain_id="eligibility-cli", api_port=free_port()))
    with pytest.MonkeyPatch.context() as patch:
        for module in (common, gov, txs):
            patch.setattr(module, "open_client",
                          lambda home, url: InProcessClient(running))
        operator = Home(running.home.root).load_key("operator").public_key.hex()
        for role in ("did.registrar", "vc.issuer.residency"):
            send(running, "gov", "propose", "grant_role", f"role={role}",
                 f"public_key={operator}")
        did = create_issuer_did(running, "operator")
        send(running, "tx", "vc", "register_issuer", f"did={did}", "type=residency")
        send(running, "tx", "vc", "create_status_list", f"list_id={LIST_ID}", f"issuer={did}",
             "purpose=revocation", "size=131072")
        holder = SigningKey.generate()
        holder.save(root / "holder.key")
        yield Desk(running, root, did, root / "holder.key", holder.public_key.hex(), [1000])
    running.close()


def test_yes_shows_only_city_and_band_and_a_replay_is_refused(desk: Desk) -> None:
    credential, _ = desk.issue("yes")
    request = desk.ask("yes")
    answered = desk.run("eligibility", "answer", str(request), "--credential",
                        str(credential), "--key", str(desk.holder_key), "--out",
                        str(desk.path("yes.answer.txt")))
    assert answered.exit_code == 0, answered.output
    assert "discloses age_band, residence_city; withholds birth_date, youth_allowance" in \
        " ".join(answered.stdout.split())
    answer = desk.path("yes.answer.txt")
    presented = answer.read_text().strip()
    disclosed = sdjwt.read_credential_claims(presented)[1]
    assert disclosed == {"residence_city": "Seoul", "age_band": "25-29"}
    assert "birth_date" in sdjwt.read_credential_claims(credential.read_text().strip())[1]
    code, text = desk.check(request, answer)
    assert code == 0, text
    assert text.startswith('yes: claims seen: age_band = "25-29", residence_city = "Seoul"')
    assert f"issuer {desk.did} (key {desk.did}#key-1)" in text and "not revoked" in text
    code, text = desk.check(request, answer)
    assert code == EXIT_ANSWER_REFUSED and "replay" in text


def test_no_for_a_band_outside_the_question(desk: Desk) -> None:
    credential, _ = desk.issue("old", {**CLAIMS, "age_band": "40-44"})
    request = desk.ask("old")
    code, text = desk.check(request, desk.answer(request, credential), "--json")
    assert code == EXIT_NOT_ELIGIBLE
    verdict = json.loads(text)
    assert verdict["answer"] == "no"
    assert verdict["claims_seen"] == {"residence_city": "Seoul", "age_band": "40-44"}
    assert verdict["unmet"] == ['age_band is "40-44", not one of "19-24", "25-29", "30-34", '
                                '"35-39"']


def test_question_file_and_answer_for_another_request(desk: Desk) -> None:
    question = desk.path("city.json")
    question.write_text(json.dumps({"claim": "residence_city", "equals": "Seoul"}))
    credential, _ = desk.issue("city")
    first = desk.ask("city-1", "--question", str(question))
    second = desk.ask("city-2", "--question", str(question))
    answer = desk.answer(first, credential)
    assert sdjwt.read_credential_claims(answer.read_text().strip())[1] == {
        "residence_city": "Seoul"}
    code, text = desk.check(second, answer)
    assert code == EXIT_ANSWER_REFUSED and "another request" in text
    tampered = desk.path("tampered.txt")
    presented = answer.read_text().strip()
    middle = len(presented) // 3
    flipped = "A" if presented[middle] != "A" else "B"
    tampered.write_text(presented[:middle] + flipped + presented[middle + 1:])
    code, text = desk.check(first, tampered)
    assert code == EXIT_ANSWER_REFUSED and text.startswith("no: the answer is refused")
    assert desk.check(first, answer)[0] == 0


def test_revoked_credential_answers_no(desk: Desk) -> None:
    credential, index = desk.issue("revoked")
    request = desk.ask("revoked-1")
    assert desk.check(request, desk.answer(request, credential))[0] == 0
    send(desk.node, "tx", "vc", "set_status", f"list_id={LIST_ID}", f"index={index}",
         "value=true")
    request = desk.ask("revoked-2")
    code, text = desk.check(request, desk.answer(request, credential))
    assert code == EXIT_ANSWER_REFUSED and "revoked" in text and str(index) in text


def test_issuer_key_rotated_out_or_did_deactivated_is_refused(desk: Desk) -> None:
    send(desk.node, "keys", "create", "agency-old")
    send(desk.node, "keys", "create", "agency-new")
    old_key = Home(desk.node.home.root).load_key("agency-old").public_key.hex()
    send(desk.node, "gov", "propose", "grant_role", "role=vc.issuer.residency",
         f"public_key={old_key}")
    did = create_issuer_did(desk.node, "agency-old")
    send(desk.node, "tx", "vc", "register_issuer", f"did={did}", "type=residency", "--key",
         "agency-old")
    send(desk.node, "tx", "vc", "create_status_list", "list_id=agency-1", f"issuer={did}",
         "purpose=revocation", "size=131072", "--key", "agency-old")
    credential, _ = desk.issue("rotated", key="agency-old", did=did, list_id="agency-1")
    send(desk.node, "did", "rotate", did, "--new-key", "agency-new", "--retire", "key-1",
         "--key", "agency-old")
    request = desk.path("rotated.request.json")
    asked = desk.run("eligibility", "ask", "--preset", "youth-allowance", "--audience",
                     "desk", "--issuer", did, "--out", str(request))
    assert asked.exit_code == 0
    code, text = desk.check(request, desk.answer(request, credential))
    assert code == EXIT_ANSWER_REFUSED and "assertionMethod" in text
    # The retired key cannot issue any more either.
    refused = desk.on_node("eligibility", "issue", "--key",
                           str(desk.node.home.root / "keys" / "agency-old.key"), "--issuer",
                           did, "--holder", desk.holder_public, "--claims",
                           str(desk.path("rotated.claims.json")), "--status-list", "agency-1",
                           "--status-index", "7", "--out", str(desk.path("never.sd-jwt")))
    assert refused.exit_code == 1 and "not an assertion method" in refused.output
    # The new key issues until the DID is deactivated; then nothing of it verifies.
    current, _ = desk.issue("current", key="agency-new", did=did, list_id="agency-1")
    fresh = desk.path("current.request.json")
    assert desk.run("eligibility", "ask", "--preset", "youth-allowance", "--audience", "desk",
                    "--issuer", did, "--out", str(fresh)).exit_code == 0
    answer = desk.answer(fresh, current)
    send(desk.node, "did", "deactivate", did, "--key", "agency-new")
    code, text = desk.check(fresh, answer)
    assert code == EXIT_ANSWER_REFUSED and "deactivated" in text


def test_bad_input_is_a_one_line_error(desk: Desk) -> None:
    request = desk.ask("bad")
    both = desk.run("eligibility", "ask", "--audience", "x", "--issuer", desk.did, "--out",
                    str(desk.path("x.json")), "--preset", "youth-allowance", "--question",
                    str(request))
    assert both.exit_code == 1 and "exactly one of" in both.output
    unknown = desk.run("eligibility", "ask", "--audience", "x", "--issuer", desk.did,
                       "--out", str(desk.path("x.json")), "--preset", "pension")
    assert unknown.exit_code == 1 and "no preset" in unknown.output
    garbage = desk.path("garbage.txt")
    garbage.write_text("not an sd-jwt")
    code, text = desk.check(request, garbage)
    assert code == EXIT_ANSWER_REFUSED and "an SD-JWT presentation is" in text
    missing = desk.run("eligibility", "answer", str(request), "--credential",
                       str(desk.path("absent.sd-jwt")), "--key", str(desk.holder_key),
                       "--out", str(desk.path("y.txt")))
    assert missing.exit_code == 1 and "cannot read credential file" in missing.output
    claims = desk.path("bad.claims.json")
    claims.write_text(json.dumps(CLAIMS))
    for list_id, index, message in ((LIST_ID, "131072", "no index"),
                                    ("nowhere", "5", "no index"),
                                    ("-bad-", "5", "list_id: String should match")):
        refused = desk.on_node("eligibility", "issue", "--key",
                               str(desk.node.home.root / "keys" / "operator.key"), "--issuer",
                               desk.did, "--holder", desk.holder_public, "--claims",
                               str(claims), "--status-list", list_id, "--status-index", index,
                               "--out", str(desk.path("never.sd-jwt")))
        assert refused.exit_code == 1 and message in " ".join(refused.output.split())
    no_node = desk.run("eligibility", "check", str(request), str(garbage))
    assert no_node.exit_code == 1 and "--node URL" in no_node.output
