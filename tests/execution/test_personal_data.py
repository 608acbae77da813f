"""The personal data detector: RRNs and phone numbers are found, ordinary public text is not."""

from __future__ import annotations

import calendar
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seoulchain.execution.personal_data import (
    PHONE_KIND,
    RRN_KIND,
    PersonalDataError,
    check_public_text,
    compute_rrn_check_digit,
    find_personal_data,
)

CENTURY_OF_SEX_DIGIT = {1: 1900, 2: 1900, 5: 1900, 6: 1900, 3: 2000, 4: 2000, 7: 2000,
                        8: 2000}
FULL_WIDTH = str.maketrans("0123456789-", "０１２３４５６７８９－")


@st.composite
def rrn_digits(draw: st.DrawFn) -> str:
    """Return the 13 digits of a resident registration number with a valid check digit."""
    sex = draw(st.sampled_from(sorted(CENTURY_OF_SEX_DIGIT)))
    year = draw(st.integers(0, 99))
    month = draw(st.integers(1, 12))
    day = draw(st.integers(1, calendar.monthrange(CENTURY_OF_SEX_DIGIT[sex] + year, month)[1]))
    serial = draw(st.text("0123456789", min_size=5, max_size=5))
    first = f"{year:02d}{month:02d}{day:02d}{sex}{serial}"
    return first + str(compute_rrn_check_digit(first))


def spell_rrn(digits: str, style: str) -> str:
    return {"hyphen": f"{digits[:6]}-{digits[6:]}", "plain": digits,
            "full width": f"{digits[:6]}-{digits[6:]}".translate(FULL_WIDTH),
            "en dash": f"{digits[:6]}\u2013{digits[6:]}",
            "masked": f"{digits[:6]}-{digits[6]}******"}[style]


@st.composite
def phone_numbers(draw: st.DrawFn) -> str:
    """Return a Korean mobile or landline number in one of its usual spellings."""
    mobile = draw(st.booleans())
    prefix = draw(st.sampled_from(["010", "011", "016", "017", "019"] if mobile
                                  else ["02", "031", "032", "051", "064", "070"]))
    middle = draw(st.text("0123456789", min_size=3, max_size=4))
    last = draw(st.text("0123456789", min_size=4, max_size=4))
    separator = draw(st.sampled_from(["-", " ", "."]))
    style = draw(st.sampled_from(["domestic", "parenthesised", "international",
                                  "international joined"] + (["joined"] if mobile else [])))
    national = prefix[1:]
    return {"domestic": f"{prefix}{separator}{middle}{separator}{last}",
            "parenthesised": f"({prefix}) {middle}-{last}",
            "international": f"+82{separator}{national}{separator}{middle}{separator}{last}",
            "international joined": f"+82{national}{middle}{last}",
            "joined": f"{prefix}{middle}{last}"}[style]


surrounding = st.sampled_from(["", "contact ", "전화: ", "(", "tel:"]), st.sampled_from(
    ["", " please", ")", ".", " 연락 바랍니다"])


@given(rrn_digits(), st.sampled_from(["hyphen", "plain", "full width", "en dash", "masked"]),
       *surrounding)
@settings(max_examples=300)
def test_resident_registration_numbers_are_found(digits: str, style: str, before: str,
                                                 after: str) -> None:
    finding = find_personal_data(before + spell_rrn(digits, style) + after)
    assert finding is not None and finding.kind == RRN_KIND


@given(phone_numbers(), *surrounding)
@settings(max_examples=300)
def test_phone_numbers_are_found(number: str, before: str, after: str) -> None:
    finding = find_personal_data(before + number + after)
    assert finding is not None and finding.kind == PHONE_KIND, number


@given(st.text(st.characters(blacklist_categories=("Nd",)), max_size=200))
def test_text_without_digits_is_never_personal_data(text: str) -> None:
    assert find_personal_data(text) is None


@given(st.integers(1900, 2100), st.integers(1, 12), st.integers(1, 28),
       st.sampled_from(["{y:04d}-{m:02d}-{d:02d}", "{y:04d}.{m:02d}.{d:02d}",
                        "{d:02d}/{m:02d}/{y:04d}", "{y:04d}년 {m}월 {d}일", "{y:04d}{m:02d}{d:02d}",
                        "{y:04d}-{m:02d}-{d:02d}T10:30:00Z"]))
def test_dates_are_not_personal_data(year: int, month: int, day: int, spelling: str) -> None:
    assert find_personal_data(spelling.format(y=year, m=month, d=day)) is None


@given(st.integers(2000, 2099), st.integers(0, 99999),
       st.sampled_from(["permit {y}-{n:04d}", "Building permit {y}-{n:04d}, lot 112-7",
                        "licence no. {y}-{n:05d}", "case {y}가{n}", "KRW {n:,}",
                        "odometer {n:,} km", "invoice {y}/{n:06d}", "ref {y}{n:05d}"]))
def test_document_numbers_are_not_personal_data(year: int, number: int, spelling: str) -> None:
    assert find_personal_data(spelling.format(y=year, n=number)) is None


@given(st.binary(min_size=1, max_size=64), st.sampled_from(["", "sha256:", "0x"]))
def test_hashes_are_not_personal_data(data: bytes, prefix: str) -> None:
    assert find_personal_data(prefix + hashlib.sha256(data).hexdigest()) is None


@pytest.mark.parametrize("text", [
    "8501011234567",          # 13 digits whose check digit is wrong
    "851301-1234567",         # month 13
    "850230-1234567",         # 30 February
    "850101-9",               # too short
    "1588-1234",              # a business's public representative number
    "0212345678",             # a landline written without separators: a document number
    "a010-1234-5678",         # inside a longer token
    "010-1234-56789",         # too many digits
    "Seoul Metropolitan Office of Education",
])
def test_near_misses_are_not_personal_data(text: str) -> None:
    assert find_personal_data(text) is None


def test_the_refusal_names_the_field_and_says_what_to_do() -> None:
    with pytest.raises(PersonalDataError) as caught:
        check_public_text("metadata.contact", "call 010-1234-5678")
    message = str(caught.value)
    assert message.startswith("metadata.contact holds what looks like a phone number")
    assert "personal data must stay off chain" in message and "salted hash" in message
    assert "1234" not in message  # the refusal never repeats the data itself
