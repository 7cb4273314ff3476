"""With a Prefect server configured ($PREFECT_API_URL, as `tailor stack env` sets it) no
command starts a temporary API. (Without one, the CLI tests and the kill drills in
tests/faults exercise the temporary API that dies with its command.)"""

from __future__ import annotations

import psutil
from prefect.settings import PREFECT_API_URL, temporary_settings

from tailor.local_prefect import local_prefect_api


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def test_a_configured_server_is_used_as_it_is_and_nothing_is_started() -> None:
    url = "http://127.0.0.1:4299/api"
    before = _children()
    with temporary_settings(updates={PREFECT_API_URL: url}), local_prefect_api() as used:
        assert used == url
        assert _children() == before

