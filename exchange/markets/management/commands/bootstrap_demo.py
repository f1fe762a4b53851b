"""Create the demo admin user, assets and market. Safe to run any number of times."""

from __future__ import annotations

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from exchange.markets.models import Asset, Market

DEMO_ASSETS = {"WETH": ("Wrapped Ether", 18), "USDC": ("USD Coin", 6)}


class Command(BaseCommand):
    help = "Create (or update) the demo admin user, the WETH and USDC assets and WETH-USDC."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--token",
            action="append",
            default=[],
            metavar="SYMBOL=ADDRESS",
            help="On-chain token address of a demo asset (repeatable).",
        )

    @transaction.atomic
    def handle(self, *args: object, **options: object) -> None:
        addresses = dict(item.split("=", 1) for item in options["token"])  # type: ignore[union-attr]
        unknown = set(addresses) - set(DEMO_ASSETS)
        if unknown:
            raise CommandError(f"unknown demo asset(s): {', '.join(sorted(unknown))}")

        username = os.environ.get("DEMO_ADMIN_USER", "admin")
        password = os.environ.get("DEMO_ADMIN_PASSWORD", "clearway-admin")
        user, created = get_user_model().objects.get_or_create(
            username=username, defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            user.set_password(password)
            user.save()
        self.stdout.write(f"admin user {username!r} {'created' if created else 'exists'}")

        assets = {}
        for symbol, (name, decimals) in DEMO_ASSETS.items():
            defaults = {"name": name, "decimals": decimals}
            if symbol in addresses:
                defaults["token_address"] = addresses[symbol]
            assets[symbol], _ = Asset.objects.update_or_create(symbol=symbol, defaults=defaults)

        market, created = Market.objects.get_or_create(
            symbol="WETH-USDC",
            defaults={
                "base": assets["WETH"],
                "quote": assets["USDC"],
                "tick_size": 10_000,  # 0.01 USDC per WETH
                "lot_size": 10**15,  # 0.001 WETH
                "min_quantity": 10**15,
                "max_quantity": 1_000 * 10**18,
                "max_notional": 10_000_000 * 10**6,
                "maker_fee_bps": 2,
                "taker_fee_bps": 5,
            },
        )
        market.full_clean()
        self.stdout.write(f"market {market.symbol} {'created' if created else 'exists'}")
