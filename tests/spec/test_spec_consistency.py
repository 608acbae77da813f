"""docs/spec agrees with itself and with the code: section references resolve, the height
bound is one number everywhere, the commit signature order is one rule, and the bundle's
checkpoint step is defined without a trusted state.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from seoulchain.codec import encode
from seoulchain.consensus import messages
from seoulchain.crypto import SigningKey, sha256
from seoulchain.errors import DecodeError, VerificationError
from seoulchain.ledger.types import (
    HEIGHT_MAX,
    ROUND_MAX,
    BlockHeader,
    Commit,
    CommitSig,
    Validator,
    ValidatorSet,
    VoteType,
    compute_vote_sign_bytes,
)

SPEC_DIR = Path(__file__).resolve().parents[2] / "docs/spec"
PAGES = {path.name: path.read_text() for path in sorted(SPEC_DIR.glob("*.md"))}
# "ledger.md §9", "[ledger.md](ledger.md) section 9", "consensus.md sections 4–5".
CROSS_REFERENCE = re.compile(
    r"\[?([a-z-]+\.md)\]?(?:\([a-z-]+\.md(?:#[\w-]*)?\))?\s+(?:§|sections?\s+)"
    r"(\d+(?:\.\d+)?)(?:\s*[–-]\s*(\d+(?:\.\d+)?))?")
# "§4.2", "section 5", "sections 1–3" with no page before them: this page. References to
# other documents (RFC 9162 §2.1.1, C2SP ...) are preceded by their name and skipped.
LOCAL_REFERENCE = re.compile(
    r"(?<![\w.\])])(\s*)(?:§|[Ss]ections?\s+)(\d+(?:\.\d+)?)(?:\s*[–-]\s*(\d+(?:\.\d+)?))?"
    r"(?!\s+there)")
EXTERNAL_PREFIX = re.compile(r"(RFC\s*\d+|\.md\]?(\([^)]*\))?|there|FIPS\s*[\d-]+)\s*$")
POWER = re.compile(r"2\s*\^\s*(\d+)\s*[−-]\s*1")


def get_sections(text: str) -> set[str]:
    """Return the numbers of a page's headings: '## 4. …' gives '4', '### 4.2 …' '4.2'."""
    return set(re.findall(r"^#{2,4}\s+(\d+(?:\.\d+)*)\.?\s", text, re.M))


def get_section_text(page: str, number: str) -> str:
    text = PAGES[page]
    start = re.search(rf"^##\s+{re.escape(number)}\.\s.*$", text, re.M)
    assert start is not None, f"{page} has no section {number}"
    end = re.search(r"^##\s+\d+\.\s", text[start.end():], re.M)
    return text[start.start():start.end() + (end.start() if end else len(text))]


def find_references() -> list[tuple[str, str, str]]:
    """Return every (from page, to page, section) reference between and within spec pages."""
    found = []
    for page, text in PAGES.items():
        for match in CROSS_REFERENCE.finditer(text):
            target = match.group(1)
            for number in filter(None, (match.group(2), match.group(3))):
                found.append((page, target, number))
        for match in LOCAL_REFERENCE.finditer(text):
            before = text[max(0, match.start() - 40):match.start()]
            if EXTERNAL_PREFIX.search(before + match.group(1)):
                continue
            for number in filter(None, (match.group(2), match.group(3))):
                found.append((page, page, number))
    return found


def test_spec_section_references_point_to_existing_sections() -> None:
    """Every "page.md §N" / "section N" between or within docs/spec pages names a heading."""
    references = find_references()
    assert len(references) > 50  # the patterns still find the spec's references
    broken = [f"{page} → {target} §{number}" for page, target, number in references
              if target in PAGES and number not in get_sections(PAGES[target])
              and number.split(".")[0] not in get_sections(PAGES[target])]
    assert not broken, "references to missing sections: " + "; ".join(broken)


def test_spec_height_bound_is_the_codes_in_every_table() -> None:
    """ledger.md §5, consensus.md §2, §3 and §11 all state 1 … HEIGHT_MAX = 2^63 − 1."""
    rows = [line for line in get_section_text("ledger.md", "5").splitlines()
            if line.startswith("| height ")]
    for number in ("2", "3"):
        rows += [line for line in get_section_text("consensus.md", number).splitlines()
                 if re.match(r"\|\s*\d+\s*\|\s*`height`", line)]
    rows += [line for line in get_section_text("consensus.md", "11").splitlines()
             if "`HEIGHT_MAX`" in line]
    assert len(rows) == 4
    for row in rows:
        bounds = [2 ** int(exponent) - 1 for exponent in POWER.findall(row)]
        assert bounds == [HEIGHT_MAX], row
    assert messages.HEIGHT_MAX is HEIGHT_MAX


def make_header(height: int) -> list[object]:
    header = BlockHeader(chain_id="seoul-1", height=2, time_ms=1, prev_block_id=sha256(b"p"),
                         tx_root=sha256(b"t"), log_root=sha256(b"l"), log_size=0,
                         state_root=sha256(b"s"), results_root=sha256(b"r"),
                         evidence_root=sha256(b"e"), validators_hash=sha256(b"v"),
                         next_validators_hash=sha256(b"n"), proposer=bytes(32),
                         last_commit_hash=sha256(b"c")).to_cbor()
    header[2] = height
    return header


@pytest.mark.parametrize("height", [HEIGHT_MAX, HEIGHT_MAX + 1, 2**64 - 1])
def test_spec_every_decoder_takes_heights_up_to_height_max_only(height: int) -> None:
    """Headers, commits and votes share the bound: what one decodes, all decode."""
    key = SigningKey(bytes(32))
    vote = messages.Vote(VoteType.PREVOTE, height, 0, b"", key.public_key, bytes(64))
    decoders = [
        lambda: BlockHeader.from_cbor(make_header(height)),
        lambda: Commit.from_cbor([1, height, 0, sha256(b"b"), []]),
        lambda: messages.Vote.decode(encode(vote.to_cbor())),
    ]
    for decode_one in decoders:
        if height <= HEIGHT_MAX:
            decode_one()
        else:
            with pytest.raises(DecodeError, match="exceeds"):
                decode_one()


def test_spec_round_bound_is_the_codes_in_both_pages() -> None:
    """ledger.md §5 and consensus.md §2, §3 state rounds 0 … ROUND_MAX = 2^31 − 1."""
    rows = [line for line in get_section_text("ledger.md", "5").splitlines()
            if line.startswith("| round ")]
    for number in ("2", "3"):
        rows += [line for line in get_section_text("consensus.md", number).splitlines()
                 if re.match(r"\|\s*\d+\s*\|\s*`round`", line)]
    assert len(rows) == 3
    for row in rows:
        bounds = [2 ** int(exponent) - 1 for exponent in POWER.findall(row)]
        assert bounds == [ROUND_MAX], row
    assert messages.ROUND_MAX is ROUND_MAX


@pytest.mark.parametrize("round_", [ROUND_MAX, ROUND_MAX + 1, 2**64 - 1])
def test_spec_commits_and_votes_take_rounds_up_to_round_max_only(round_: int) -> None:
    """A commit decodes exactly the rounds a vote can carry."""
    key = SigningKey(bytes(32))
    vote = messages.Vote(VoteType.PRECOMMIT, 5, round_, sha256(b"b"), key.public_key,
                         bytes(64))
    decoders = [
        lambda: Commit.from_cbor([1, 5, round_, sha256(b"b"), []]),
        lambda: messages.Vote.decode(encode(vote.to_cbor())),
    ]
    for decode_one in decoders:
        if round_ <= ROUND_MAX:
            decode_one()
        else:
            with pytest.raises(DecodeError, match="exceeds"):
                decode_one()


def test_spec_commit_signature_order_is_one_rule_in_both_pages_and_the_code() -> None:
    """consensus.md §4 and ledger.md §9 both require strictly ascending keys; neither says
    another page allows any order; verify_commit refuses a descending commit."""
    for page, number in (("consensus.md", "4"), ("ledger.md", "9")):
        section = get_section_text(page, number)
        assert "strictly ascending" in section
        assert "any order" not in section and "its note" not in section
    keys = sorted((SigningKey(sha256(bytes([index]))) for index in range(3)),
                  key=lambda key: key.public_key)
    validators = ValidatorSet.of([Validator(key.public_key, 1, "") for key in keys])
    block_id = sha256(b"block")
    sign_bytes = compute_vote_sign_bytes("seoul-1", VoteType.PRECOMMIT, 5, 0, block_id)
    sigs = [CommitSig(key.public_key, key.sign(sign_bytes)) for key in keys]
    messages.verify_commit("seoul-1", validators, Commit(5, 0, block_id, tuple(sigs)),
                           block_id, 5)
    with pytest.raises(VerificationError, match="ascending"):
        messages.verify_commit("seoul-1", validators,
                               Commit(5, 0, block_id, tuple(reversed(sigs))), block_id, 5)


def test_spec_bundle_checkpoint_step_is_defined_without_a_trusted_state() -> None:
    """proofs.md §7: light block 1 of a checkpoint bundle is checked against the genesis's
    chain id, not against a trusted state that does not exist yet."""
    step = get_section_text("proofs.md", "7").split("5. **light blocks**")[1].split("\n6. ")[0]
    assert "passes check C" not in step
    assert "`H.chain_id = genesis.chain_id`" in step
    assert "`SHA-256(CBOR(V)) = H.validators_hash`" in step
    assert "(genesis.chain_id, H.height, block id, H.time_ms, V, H.next_validators_hash)" in step
