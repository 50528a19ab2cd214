"""The strict-E.164 fast path decides exactly as the full ``phonenumbers`` parse.

Differential: every generated number goes through ``e164`` (fast path first)
and ``parse_e164`` (the full parse alone); the accepted number or the
rejection text must be identical. Numbers come from every country calling
code's metadata (each region's example numbers and pattern prefixes, cut,
grown and with digits changed), plus random digit strings and non-strict
spellings, so both sides of every branch of the fast check are exercised.
"""

from __future__ import annotations

import random

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers.phonemetadata import PhoneMetadata

from dialer.core.errors import ValidationError
from dialer.core.exotel import e164, parse_e164, strict_e164_valid

DESCS = (
    "general_desc",
    "fixed_line",
    "mobile",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "personal_number",
    "voip",
    "pager",
    "uan",
    "voicemail",
)


def outcome(fn: object, number: str, region: str | None) -> tuple[str, str]:
    try:
        return "ok", fn(number, region, field_name="to")  # type: ignore[operator]
    except ValidationError as exc:
        return "rejected", str(exc)


def examples() -> list[tuple[int, str]]:
    """(calling code, national number) of every example number in the metadata."""
    out = []
    for cc, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items():
        for region in regions:
            md = PhoneMetadata.metadata_for_region_or_calling_code(cc, region)
            if md is None:
                continue
            for name in DESCS:
                desc = getattr(md, name)
                if desc is not None and desc.example_number:
                    out.append((cc, desc.example_number))
    return out


def mutations(cc: int, nsn: str, rng: random.Random) -> list[str]:
    digits = "0123456789"
    i = rng.randrange(len(nsn))
    changed = nsn[:i] + rng.choice(digits) + nsn[i + 1 :]
    return [
        nsn,
        changed,
        nsn[:-1],
        nsn + rng.choice(digits),
        nsn[:1] + nsn,  # a doubled leading digit (a national prefix look-alike)
        "0" + nsn,
        "1" + nsn,
        "".join(rng.choice(digits) for _ in range(len(nsn))),
        nsn[: rng.randrange(1, len(nsn) + 1)],
    ]


def generated(seed: int = 17) -> list[str]:
    rng = random.Random(seed)
    numbers = []
    for cc, nsn in examples():
        numbers += [f"+{cc}{m}" for m in mutations(cc, nsn, rng) if m]
    for _ in range(8_000):  # random strings after a random known or unknown code
        cc = rng.choice([rng.randrange(1, 1000), *phonenumbers.COUNTRY_CODE_TO_REGION_CODE])
        numbers.append(
            f"+{cc}" + "".join(rng.choice("0123456789") for _ in range(rng.randrange(0, 16)))
        )
    return numbers


def test_fast_path_agrees_with_the_full_parse_on_every_code() -> None:
    numbers = generated()
    fast = canonical = 0
    for number in numbers:
        for region in (None, "IN"):
            full = outcome(parse_e164, number, region)
            assert outcome(e164, number, region) == full, number
        fast += strict_e164_valid(number)
        canonical += full == ("ok", number)
    # the fast path must carry nearly all input already canonical, or ingest silently slows
    assert fast >= 0.95 * canonical, (fast, canonical)
    assert len(numbers) > 15_000


def test_fast_path_only_accepts_what_it_returns_unchanged() -> None:
    for number in generated(seed=18)[:20_000]:
        if strict_e164_valid(number):
            parsed = phonenumbers.parse(number, None)
            assert phonenumbers.is_valid_number(parsed)
            assert phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == number


@pytest.mark.parametrize(
    "number",
    [
        "+919876543210",  # India mobile
        "+14155552671",  # NANPA: region picked by full validation
        "+447400123456",  # GB of +44 (GG, IM, JE have leading digits)
        "+79123456789",  # RU of +7 (KZ has leading digits)
        "+390612345678",  # Italian leading zero
        "+80012345678",  # non-geographic +800
    ],
)
def test_common_numbers_take_the_fast_path(number: str) -> None:
    assert strict_e164_valid(number)
    assert e164(number) == parse_e164(number) == number


@pytest.mark.parametrize(
    "number",
    [
        "919876543210",  # no plus
        "+91 98765 43210",  # spaces
        "+91987654321\u0660",  # a non-ASCII digit (Arabic-Indic zero)
        "+0919876543210",  # a leading zero after the plus (the parse retries as IDD)
        "+00919876543210",
        "+9",
        "+",
        "",
        "+919876543210 ext. 12",
        "+91098765432",  # India's national prefix after the code: the parse decides
    ],
)
def test_anything_not_plainly_strict_goes_to_the_full_parse(number: str) -> None:
    assert not strict_e164_valid(number)
    for region in (None, "IN"):
        assert outcome(e164, number, region) == outcome(parse_e164, number, region)


@settings(max_examples=1500, deadline=None)
@given(
    st.text(alphabet="+0123456789 -()x\u0663", max_size=20),
    st.sampled_from([None, "IN", "US", "GB"]),
)
def test_any_text_gets_the_same_answer(number: str, region: str | None) -> None:
    assert outcome(e164, number, region) == outcome(parse_e164, number, region)
