from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from exchange.money import (
    AmountError,
    BaseUnitsField,
    NumberError,
    from_base_units,
    parse_whole,
    to_base_units,
)


@pytest.mark.parametrize(
    ("text", "decimals", "units"),
    [("1.5", 6, 1_500_000), ("0.000001", 6, 1), ("10", 0, 10), ("0", 18, 0),
     ("123456789.123456789123456789", 18, 123456789123456789123456789), ("1.50", 1, 15)],
)  # fmt: skip
def test_to_base_units_is_exact(text: str, decimals: int, units: int) -> None:
    assert to_base_units(text, decimals) == units


@pytest.mark.parametrize(
    "text", ["0.0000001", "-1", "+1", "1e3", "NaN", "Infinity", "", " ", "1,5", "0x10", "1.2.3"]
)
def test_to_base_units_refuses_inexact_or_malformed(text: str) -> None:
    with pytest.raises(AmountError):
        to_base_units(text, 6)


def test_floats_are_refused() -> None:
    with pytest.raises(AmountError):
        to_base_units(1.5, 6)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        from_base_units(1.5, 6)  # type: ignore[arg-type]


def test_amount_wider_than_uint256_is_refused() -> None:
    with pytest.raises(AmountError, match="too large"):
        to_base_units(str(2**256), 0)


@given(units=st.integers(min_value=0, max_value=2**256 - 1), decimals=st.integers(0, 36))
def test_round_trip(units: int, decimals: int) -> None:
    assert to_base_units(from_base_units(units, decimals), decimals) == units


def test_from_base_units_formats_plainly() -> None:
    assert from_base_units(1_500_000, 6) == "1.5"
    assert from_base_units(1, 18) == "0.000000000000000001"
    assert from_base_units(-25, 1) == "-2.5"
    assert from_base_units(7, 0) == "7"


# The grammar (docs/API.md): Decimal() and int() take all of these, and each once moved money.
@pytest.mark.parametrize(
    "text",
    ["\u0661", "\uff11", "1_0", "1_000.5", " 1", "1 ", "\t1", ".5", "1.", "\u0661.\u0660",
     "1" * 101, "\u00b9", "\U0001d7ce"],
)  # fmt: skip
def test_to_base_units_takes_only_ascii_digits(text: str) -> None:
    with pytest.raises(AmountError):
        to_base_units(text, 6)


@pytest.mark.parametrize(
    ("value", "expected"), [(7, 7), ("7", 7), ("007", 7), (0, 0), (2**256 - 1, 2**256 - 1)]
)
def test_parse_whole_takes_json_integers_and_ascii_digit_strings(value, expected) -> None:
    assert parse_whole(value) == expected


@pytest.mark.parametrize(
    "value", [True, False, 1.0, "1.0", "1_0", "\u0661", "-1", "+1", " 1", "", "1e3", None, [1]]
)
def test_parse_whole_refuses_the_rest(value) -> None:
    with pytest.raises(NumberError):
        parse_whole(value)


def test_parse_whole_ranges_and_strings_switch() -> None:
    with pytest.raises(NumberError, match="between"):
        parse_whole(86_401, minimum=0, maximum=86_400)
    with pytest.raises(NumberError):
        parse_whole("5", strings=False)
    assert parse_whole(5, strings=False) == 5


@pytest.mark.parametrize("text", ["1_0", "\u0661", "\uff11\uff10", "1.0", "1e3", "ten"])
def test_base_units_typed_into_the_admin_follow_the_grammar(text: str) -> None:
    field = BaseUnitsField().formfield()
    with pytest.raises(ValidationError):
        field.clean(text)
    assert field.clean(" 10 ") == 10
    assert field.clean(str(2**255)) == 2**255
