from __future__ import annotations

from tests.trading.support import worker  # noqa: F401
