"""Statements rebuilt from docs/spec/proofs.md §7.4 alone match the reference, byte for byte.

The templates and the result-code table are read from the spec page itself, and the field
renderings below are written from its prose, so a change to either the page or the code
that makes them disagree fails here.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from seoulchain.execution.results import ResultCode
from seoulchain.ledger.genesis import Genesis
from seoulchain.light import bundle as bundle_module
from seoulchain.light.bundle import Checkpoint, verify_bundle

DOCS = Path(__file__).resolve().parents[2] / "docs" / "spec"
SPEC = (DOCS / "proofs.md").read_text(encoding="utf-8")
VECTORS: dict[str, Any] = json.loads((DOCS / "vectors" / "proofs.json").read_text("utf-8"))
GENESIS = Genesis.from_json(VECTORS["genesis"])
SECTION = SPEC[SPEC.index("### 7.4 Statements"):SPEC.index("## 8.")]


def read_table(title: str) -> list[list[str]]:
    """Return the rows (cells stripped) of the first table after `title` in section 7.4."""
    lines = SECTION[SECTION.index(title):].splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def read_templates() -> dict[str, str]:
    """Return template name -> text; text is the first back-quoted span of the row."""
    templates = {}
    for name, text in read_table("**Templates.**"):
        spans = re.findall(r"`([^`]*)`", text)
        templates[name.strip("`")] = "" if text.startswith("``") else spans[0]
    return templates


TEMPLATES = read_templates()
CODE_NAMES = {int(code): name.strip("`") for code, name, _ in read_table("**Result codes.**")}


def quote(text: str) -> str:
    """`quote(text)` as the spec words it, character by character."""
    short = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
             "\t": "\\t"}
    out = []
    for char in text:
        if char in short:
            out.append(short[char])
        elif ord(char) < 0x20:
            out.append(f"\\u00{ord(char):02x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def render_time(ms: int) -> str:
    if ms >= 253402300800000:
        return f"{ms} ms after the Unix epoch"
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
            f"{moment.minute:02d}:{moment.second:02d}.{ms % 1000:03d}Z")


def render_key(hex_key: str) -> str:
    names = {member["public_key"]: member["name"]
             for member in VECTORS["genesis"]["agencies"]["members"]}
    shown = f"ed25519 {hex_key}"
    return f"{names[hex_key]} ({shown})" if hex_key in names else shown


def render_state_key(key: bytes) -> str:
    length = next((index for index, byte in enumerate(key) if not 0x21 <= byte <= 0x7E),
                  len(key))
    rest = key[length:]
    return quote(key[:length].decode("ascii")) + (f" + 0x{rest.hex()}" if rest else "")


def fill(name: str, **fields: Any) -> str:
    return TEMPLATES[name].format(**fields)


def rebuild(kind: str, facts: dict[str, Any]) -> str:
    """Build a statement from the facts with the spec's templates and renderings only."""
    if kind == "tx":
        outcome = CODE_NAMES.get(facts["code"], f"code {facts['code']}")
        outcome += f" {quote(facts['log'])}" if facts["log"] else ""
        return fill("tx", tx_hash=facts["tx_hash"], service=facts["service"],
                    method=facts["method"], signer=render_key(facts["signer"]),
                    nonce=facts["nonce"], height=facts["height"],
                    time=render_time(facts["time_ms"]), position=facts["position"],
                    log_index=facts["log_index"], outcome=outcome)
    if kind == "state":
        key = render_state_key(bytes.fromhex(facts["key"]))
        if facts["value"] is None:
            return fill("state absent", key=key, height=facts["height"],
                        time=render_time(facts["time_ms"]))
        return fill("state present", key=key, value_bytes=len(bytes.fromhex(facts["value"])),
                    value_hash=facts["value_hash"], height=facts["height"],
                    time=render_time(facts["time_ms"]))
    as_of = {"as_of_height": facts["as_of_height"],
             "as_of_time": render_time(facts["as_of_time_ms"])}
    if kind == "vehicle":
        return rebuild_vehicle(facts, as_of)
    if kind == "labor":
        return rebuild_labor(facts, as_of)
    if facts.get("service") == "document":
        return rebuild_issued(facts, as_of)
    if not facts["anchored"]:
        return fill("document absent", doc_hash=facts["doc_hash"], **as_of)
    correction = "" if facts["supersedes"] is None else (
        TEMPLATES["correction"].format(supersedes=facts["supersedes"]))
    status = fill("not superseded", **as_of) if facts["superseded_by"] is None else fill(
        "superseded", superseded_by=facts["superseded_by"],
        superseded_height=facts["superseded_height"],
        reason=quote(facts["superseded_reason"]), **as_of)
    return fill("document present", doc_hash=facts["doc_hash"],
                issuer=render_key(facts["issuer"]), height=facts["height"],
                time=render_time(facts["time_ms"]), kind=quote(facts["kind"]), tx=facts["tx"],
                correction=correction, status=status)


def rebuild_issued(facts: dict[str, Any], as_of: dict[str, Any]) -> str:
    """An issued document's status line, from the `issued …` templates."""
    status = facts["status"]
    if status == "unknown":
        return fill("issued unknown", doc_hash=facts["doc_hash"], **as_of)
    issued = fill("issued", doc_hash=facts["doc_hash"], kind=quote(facts["kind"]),
                  issuer=render_key(facts["issuer"]), height=facts["height"],
                  time=render_time(facts["time_ms"]))
    until = "with no end" if facts["valid_until_ms"] is None else (
        f"until {render_time(facts['valid_until_ms'])}")
    fields = {"issued": issued, "until": until, "as_of": fill("as of", **as_of)}
    if status == "revoked":
        fields.update(revoked_height=facts["revoked_height"],
                      revoked_time=render_time(facts["revoked_time_ms"]),
                      revoked_reason=quote(facts["revoked_reason"]))
    if status == "superseded":
        fields.update(superseded_by=facts["superseded_by"],
                      superseded_height=facts["superseded_height"],
                      reason=quote(facts["superseded_reason"]))
    if facts["valid_until_ms"] is not None:
        fields["valid_until"] = render_time(facts["valid_until_ms"])
    fields["valid_from"] = render_time(facts["valid_from_ms"])
    return fill(f"issued {status}", **fields)


WHAT = {kind.strip("`"): re.findall(r"`([^`]*)`", text)[0]
        for kinds, text in read_table("The `{what}` of an entry") for kind in kinds.split(", ")}


def rebuild_vehicle(facts: dict[str, Any], as_of: dict[str, Any]) -> str:
    """A vehicle's history: `vehicle present` then one `entry` line per entry."""
    if not facts["registered"]:
        return fill("vehicle absent", vin=facts["vin"], **as_of)
    lines = [fill("vehicle present", vin=facts["vin"], model=quote(facts["model"]),
                  status=facts["status"], owner=render_key(facts["owner"]),
                  odometer_km=facts["odometer_km"], n=len(facts["entries"]), **as_of)]
    for entry in facts["entries"]:
        lines.append(fill("entry", seq=entry["seq"], entry_time=render_time(entry["time_ms"]),
                          entry_height=entry["height"], what=render_what(entry),
                          signer=render_key(entry["signer"])))
    return "\n".join(lines)


def rebuild_labor(facts: dict[str, Any], as_of: dict[str, Any]) -> str:
    """A party's labor history: `labor present`, then each contract and its entries."""
    party = render_key(facts["party"])
    if not facts["contracts"]:
        return fill("labor absent", party=party, **as_of)
    lines = [fill("labor present", party=party, n=len(facts["contracts"]), **as_of)]
    for contract in facts["contracts"]:
        until = "" if contract["end_date"] is None else fill("until", **contract)
        signed = "" if contract["signed_height"] is None else fill("signed", **contract)
        lines.append(fill("contract", **{
            **contract, "employer": render_key(contract["employer"]),
            "worker": render_key(contract["worker"]),
            "status": contract["status"].replace("_", " "), "until": until,
            "signed": signed}))
        for number, amendment in enumerate(contract["amendment_entries"], 1):
            status = {"proposed": "pending",
                      "in_force": f"in force from height {amendment['closed_height']}",
                      "withdrawn": f"withdrawn at height {amendment['closed_height']}"}
            lines.append(fill("amendment", number=number, **amendment,
                              amendment_status=status[amendment["status"]]))
        for kind in ("work", "payment"):
            lines += [fill(kind, number=number, **entry)
                      for number, entry in enumerate(contract[f"{kind}_entries"], 1)]
    return "\n".join(lines)


def render_what(entry: dict[str, Any]) -> str:
    """An entry's `{what}`: its kind's row, quoted texts and the optional parts filled."""
    template = WHAT.get(entry["kind"], WHAT["any other"])
    fields = {name: render_key(value) if name in ("owner", "seller", "buyer") else value
              for name, value in entry.items()}
    fields.update(
        at_km="" if entry.get("odometer_km") is None else f" at {entry['odometer_km']} km",
        for_krw="" if entry.get("price_krw") is None else f" for {entry['price_krw']} KRW",
        note=f" (note: {quote(entry['note'])})" if entry.get("note") else "")
    template = re.sub(r"\{quote\((\w+)\)\}",
                      lambda match: quote(entry[match.group(1)]).replace("{", "{{")
                      .replace("}", "}}"), template)
    return template.format(**fields)


@pytest.mark.parametrize("vector", VECTORS["valid"], ids=lambda vector: vector["name"])
def test_statements_follow_the_spec_templates(vector: dict[str, Any]) -> None:
    checkpoint = vector["checkpoint"]
    trusted = None if checkpoint is None else Checkpoint(
        checkpoint["height"], bytes.fromhex(checkpoint["block_id"]))
    statement = verify_bundle(vector["bundle"], GENESIS, trusted)
    facts = {**statement.facts, "height": statement.facts.get("height", statement.height)}
    assert rebuild(statement.kind, facts) == vector["statement"] == statement.text


def test_statements_hold_no_python_reprs() -> None:
    for vector in VECTORS["valid"]:
        text = vector["statement"]
        assert "None" not in text and "'" not in text.replace("holder's", ""), text
        assert "b'" not in text and "{" not in text


def test_statements_name_the_agency_beside_its_key() -> None:
    issuer = VECTORS["genesis"]["agencies"]["members"][0]
    texts = [vector["statement"] for vector in VECTORS["valid"]]
    assert any(f"anchored by {issuer['name']} (ed25519 {issuer['public_key']})" in text
               for text in texts)
    assert any(f"signed by {issuer['name']} (ed25519 {issuer['public_key']})" in text
               for text in texts)


def test_result_code_table_in_the_spec_is_the_engines() -> None:
    assert {code.value: code.name for code in ResultCode} == CODE_NAMES
    assert bundle_module.RESULT_CODE_NAMES == CODE_NAMES


def test_every_template_of_the_spec_is_used() -> None:
    assert set(TEMPLATES) == {"tx", "state present", "state absent", "document absent",
                              "document present", "correction", "not superseded",
                              "superseded", "issued unknown", "issued", "issued valid",
                              "issued revoked", "issued superseded", "issued expired",
                              "issued not_yet_valid", "as of", "vehicle absent",
                              "vehicle present", "entry", "labor absent", "labor present",
                              "contract", "until", "signed", "amendment", "work",
                              "payment"}


@pytest.mark.parametrize("text", ["", "plain", 'say "hi"', "back\\slash", "tab\there",
                                  "new\nline", "bell\x07", "\x1f\x7f", "한글 é", "\u2028"])
def test_quote_is_the_spec_json_string(text: str) -> None:
    assert bundle_module.quote_text(text) == quote(text)


@pytest.mark.parametrize("ms", [0, 1, 999, 1_767_225_600_123, 253402300799999,
                                253402300800000, 2**64 - 1])
def test_time_rendering_is_the_spec_one(ms: int) -> None:
    assert bundle_module.format_time(ms) == render_time(ms)


@pytest.mark.parametrize("key", [b"notary/doc/\x00\xff", b"", b" lead", b"a b", b'q"uote',
                                 b"\x7fdel", b"auth/role/notary.issuer/"])
def test_state_key_rendering_is_the_spec_one(key: bytes) -> None:
    assert bundle_module.describe_key(key) == render_state_key(key)


def test_an_unnamed_key_is_shown_by_its_hex_alone() -> None:
    key = bytes(range(32))
    assert bundle_module.render_public_key(key, GENESIS) == f"ed25519 {key.hex()}"
