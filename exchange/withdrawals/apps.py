from __future__ import annotations

from django.apps import AppConfig


class WithdrawalsConfig(AppConfig):
    name = "exchange.withdrawals"
    label = "withdrawals"
