"""Root conftest: markers shared by the whole suite.

Every test collected under ``tests/e2e`` is marked ``e2e`` (select with ``-m e2e``, skip with
``-m "not e2e"``).
"""

from __future__ import annotations

from pathlib import Path
from typing import List

import pytest

_E2E_DIR = Path(__file__).resolve().parent / "e2e"


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.fspath)).resolve()
        if _E2E_DIR in path.parents:
            item.add_marker(pytest.mark.e2e)
