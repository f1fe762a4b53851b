from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.money import AmountError, from_base_units, to_base_units


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
