"""Importers: turn a real export (its own columns and quirks) into a raw data set in contract names.

Importers translate and normalise; they never drop a row. Lines that are not valid purchases
(guest checkouts, zero prices, postage codes, ...) come out as they are, so that
:mod:`tailor.data.validate` quarantines each one under a named rule. See ``docs/data.md``.
"""

from __future__ import annotations

from tailor.data.importers.common import ImporterError
from tailor.data.importers.movielens import import_movielens
from tailor.data.importers.online_retail import import_online_retail

__all__ = ["ImporterError", "import_movielens", "import_online_retail"]
