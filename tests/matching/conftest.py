"""The engine tests need neither Django nor a database: they run with ``-p no:django``.

The repository root goes on ``sys.path`` here so ``import exchange.matching`` works however
pytest is invoked (pytest-django would add it, but these tests do not load that plugin).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
