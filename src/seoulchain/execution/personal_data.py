"""Personal data detector: Korean resident registration numbers and phone numbers in text.

Theory of operation. Public fields of a transaction (a notary record's kind, metadata and
correction reason) go on chain forever, readable by anyone; personal data must stay off
chain. `find_personal_data` looks for the two kinds that are plainly personal and easy to
recognise without false positives, and `check_public_text` turns a finding into a
`PersonalDataError` naming the field, what was found and what to do instead.

- A resident registration number (주민등록번호) is `YYMMDD-GNNNNNN`: a valid birth date,
  a sex/century digit G from 1 to 8 (0 and 9 for births before 1900), six more digits.
  With a hyphen (or dash) the shape alone is specific enough. Without one, a 13-digit run
  must also pass the check digit (weights 2..9,2..5, `(11 - sum mod 11) mod 10`); numbers
  issued since October 2020 carry no check digit, so they are found only when written with
  a hyphen, which is how they are written. A masked number (`YYMMDD-G******`) still gives
  a birth date and sex and is found too.
- A phone number: mobile (`010`, `011`, `016`-`019`), Seoul `02`, regional `0[3-6][1-5]`
  and `070`, domestic or after `+82` / `0082`; groups of 3-4 and 4 digits separated by a
  hyphen, dot or space. A mobile number (or one after +82) may be written without
  separators; a landline needs them, so that plain 10-digit document numbers pass.

Every match must be a whole token: no ASCII letter or digit directly before or after it,
so digits inside hashes, longer numbers or document numbers are not read as either kind.
Text is NFKC-normalised first, so full-width digits and hyphens are found as well.

Pure and deterministic (no I/O, no clock, no locale): safe inside transaction execution.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from dataclasses import dataclass

RRN_KIND = "resident registration number"
PHONE_KIND = "phone number"
# Check-digit weights of the resident registration number (Enforcement Rule of the Resident
# Registration Act), applied to its first 12 digits.
RRN_WEIGHTS = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)
# Sex/century digit -> century of the birth year.
RRN_CENTURIES = {"1": 1900, "2": 1900, "5": 1900, "6": 1900, "3": 2000, "4": 2000,
                 "7": 2000, "8": 2000, "9": 1800, "0": 1800}
# Hyphen-like characters left after NFKC: hyphen-minus, hyphen, non-breaking hyphen,
# figure dash, en dash, em dash, minus sign.
DASHES = "\\-\u2010\u2011\u2012\u2013\u2014\u2212"
BEFORE = r"(?<![0-9A-Za-z])"
AFTER = r"(?![0-9A-Za-z])"
RRN_PATTERN = re.compile(
    BEFORE + r"(?P<date>[0-9]{6})(?P<sep>[" + DASHES + r"]?)(?P<g>[0-9])"
    r"(?P<rest>[0-9]{6}|(?<=[" + DASHES + r"][0-9])[*xX●]{6})" + AFTER)
GROUP_SEP = r"[" + DASHES + r". ]"
MOBILE_PREFIX = r"01[016789]"
LANDLINE_PREFIX = r"(?:02|0[3-6][1-5]|070)"
PHONE_PATTERNS = (
    # +82 10 1234 5678, +82-2-123-4567, 0082 10..., +82 (0)10 ...: separators optional.
    re.compile(BEFORE + r"(?:\+|00)82" + GROUP_SEP + r"?"
               r"(?:\(0\)" + GROUP_SEP + r"?)?(?:1[016789]|2|[3-6][1-5]|70)"
               + GROUP_SEP + r"?[0-9]{3,4}" + GROUP_SEP + r"?[0-9]{4}" + AFTER),
    # 010-1234-5678, 010 1234 5678, 01012345678, (010) 1234-5678.
    re.compile(BEFORE + r"(?:\(" + MOBILE_PREFIX + r"\)" + GROUP_SEP + r"?|"
               + MOBILE_PREFIX + GROUP_SEP + r"?)[0-9]{3,4}" + GROUP_SEP + r"?[0-9]{4}"
               + AFTER),
    # 02-123-4567, 031.123.4567, (02) 123-4567: separators required.
    re.compile(BEFORE + r"(?:\(" + LANDLINE_PREFIX + r"\)" + GROUP_SEP + r"?|"
               + LANDLINE_PREFIX + GROUP_SEP + r")[0-9]{3,4}" + GROUP_SEP + r"[0-9]{4}"
               + AFTER),
)
OFF_CHAIN_ADVICE = ("personal data must stay off chain: keep it in the document or the "
                    "agency's own records, which the anchored SHA-256 commits to without "
                    "revealing them (to commit to one value alone, anchor a salted hash of it)")


class PersonalDataError(ValueError):
    """A public field holds what looks like personal data."""

    def __init__(self, field: str, kind: str):
        super().__init__(f"{field} {describe_kind(kind)}")
        self.field = field
        self.kind = kind


@dataclass(frozen=True, slots=True)
class PersonalDataFinding:
    """What was found in a text and where (indices into the NFKC-normalised text)."""

    kind: str
    start: int
    end: int


def find_personal_data(text: str) -> PersonalDataFinding | None:
    """Return the first resident registration number or phone number in `text`, or None."""
    normal = unicodedata.normalize("NFKC", text)
    for match in RRN_PATTERN.finditer(normal):
        if is_rrn_match(match):
            return PersonalDataFinding(RRN_KIND, match.start(), match.end())
    for pattern in PHONE_PATTERNS:
        match = pattern.search(normal)
        if match is not None:
            return PersonalDataFinding(PHONE_KIND, match.start(), match.end())
    return None


def describe_kind(kind: str) -> str:
    """Return the reason a public field holding `kind` is refused, after the field name."""
    return f"holds what looks like a {kind}; {OFF_CHAIN_ADVICE}"


def check_public_text(field: str, text: str) -> str:
    """Return `text`, or raise `PersonalDataError` if it holds plainly personal data."""
    finding = find_personal_data(text)
    if finding is not None:
        raise PersonalDataError(field, finding.kind)
    return text


def is_rrn_match(match: re.Match[str]) -> bool:
    """Return True if a YYMMDD-G… candidate has a real birth date (and check digit)."""
    date, sex = match["date"], match["g"]
    if sex not in RRN_CENTURIES or not is_birth_date(date, RRN_CENTURIES[sex]):
        return False
    if match["sep"]:
        return True
    return is_rrn_check_digit_valid(date + sex + match["rest"])


def is_birth_date(yymmdd: str, century: int) -> bool:
    """Return True if YYMMDD is a calendar date in the given century."""
    year, month, day = century + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:])
    return 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]


def is_rrn_check_digit_valid(digits: str) -> bool:
    """Return True if 13 digits end in the resident registration number's check digit."""
    return compute_rrn_check_digit(digits[:12]) == int(digits[12])


def compute_rrn_check_digit(first_twelve: str) -> int:
    """Return the check digit that completes 12 digits of a resident registration number."""
    total = sum(int(digit) * weight for digit, weight in zip(first_twelve, RRN_WEIGHTS,
                                                              strict=True))
    return (11 - total % 11) % 10
