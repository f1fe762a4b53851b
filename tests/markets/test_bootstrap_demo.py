from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from exchange.markets.models import Asset, Market

pytestmark = pytest.mark.django_db

WETH = "0x" + "11" * 20


def test_bootstrap_demo_is_idempotent() -> None:
    call_command("bootstrap_demo", token=[f"WETH={WETH}"])
    call_command("bootstrap_demo", token=[f"WETH={WETH}"])
    assert get_user_model().objects.filter(username="admin", is_superuser=True).count() == 1
    assert Market.objects.get(symbol="WETH-USDC").base.token_address == WETH
    assert Asset.objects.count() == 2
    assert get_user_model().objects.get(username="admin").check_password("clearway-admin")


def test_bootstrap_demo_rejects_unknown_asset() -> None:
    with pytest.raises(CommandError, match="unknown demo asset"):
        call_command("bootstrap_demo", token=["DOGE=0x" + "22" * 20])
    assert not Market.objects.exists()


def test_tick_times_lot_must_give_whole_quote_units() -> None:
    base = Asset.objects.create(symbol="WETH", decimals=18)
    quote = Asset.objects.create(symbol="USDC", decimals=6)
    market = Market(
        symbol="WETH-USDC", base=base, quote=quote, tick_size=1, lot_size=10**15,
        min_quantity=10**15, max_quantity=10**18, max_notional=10**12,
    )  # fmt: skip
    with pytest.raises(ValidationError) as error:
        market.full_clean()
    assert "tick_size" in error.value.message_dict
