"""A separate OS process spending one account's order tokens (see test_ratelimit.py).

Usage: python -m tests.risk.ratelimit_worker ADDRESS MARKET ATTEMPTS
Prints "ready" once Django, the database and Redis are warm, waits for a line on stdin, then
calls rate_limit_order ATTEMPTS times and prints {"allowed": n, "refused": m}.
"""

from __future__ import annotations

import json
import os
import sys

import django


def main(address: str, symbol: str, attempts: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings")
    django.setup()
    from django.conf import settings

    from exchange import ratelimit
    from exchange.accounts.models import Account
    from exchange.errors import RateLimited
    from exchange.markets.models import Market
    from exchange.risk.selectors import effective_limits
    from exchange.risk.services import rate_limit_order

    account = Account.objects.get(address=address)
    market = Market.objects.select_related("base", "quote").get(symbol=symbol)
    effective_limits(account=account, market=market)  # opens the database connection
    ratelimit._client(settings.REDIS_URL).ping()
    print("ready", flush=True)
    sys.stdin.readline()
    allowed = refused = 0
    for _ in range(attempts):
        try:
            rate_limit_order(account=account, market=market)
            allowed += 1
        except RateLimited:
            refused += 1
    print(json.dumps({"allowed": allowed, "refused": refused}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
