"""The variables that locate a user's files, and the folder each gets in a home of the tests'
own: one table for the session home (tests/conftest.py) and every hermetic environment
(tests/helpers.py). Imports nothing, so conftest can read it before anything else runs."""

from __future__ import annotations

from typing import Dict

HOME_VARIABLES: Dict[str, str] = {
    "HOME": "home",
    "XDG_CONFIG_HOME": "config",
    "XDG_CACHE_HOME": "cache",
    "XDG_DATA_HOME": "data",
    "XDG_STATE_HOME": "state",
    "XDG_CONFIG_DIRS": "etc-xdg",
    "XDG_RUNTIME_DIR": "run",
}
