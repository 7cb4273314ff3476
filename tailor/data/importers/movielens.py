"""GroupLens MovieLens 100K directory -> raw data set in contract column names.

The standard public benchmark for hybrid recommenders (LightFM's documentation reports on it),
so it lets the recommender be checked against published numbers. Mapping:

- ``transactions``: one line per rating in ``u.data`` with ``rating >= min_rating``
  (``min_rating=0`` keeps all 100,000, LightFM's protocol of treating every rating as positive).
  ``order_id`` = ``"<user>-<item>"`` (a user rates an item once), ``customer_id`` = user id,
  ``product_id`` = item id, ``quantity`` = 1, ``unit_price`` = 1.0 (ratings have no price but the
  contract needs a positive one), ``timestamp`` from unix seconds; extra columns ``rating`` and
  ``split`` (``base``/``test`` from the fixed ``ua.base``/``ua.test`` split, missing for a rating
  in neither file).
- ``customers`` (``u.user``): age, gender, occupation, zip (kept as text: Canadian codes exist).
- ``products`` (``u.item``): title as ``description``, ``release_date``, the 19 genre flags as
  ``genre_<name>`` 0/1 columns, and ``category`` = the first flagged genre in ``u.genre`` order.
  The video release date (empty in every row) and the IMDb URL (unique per item, useless as a
  feature) are not carried.

Files are latin-1. Blank lines are skipped and counted (``u.user`` starts with one in the copy
under ../shared); ``_source_row`` is the physical line number. A line with the wrong number of
fields, or a rating that is not a whole number, is an :class:`ImporterError` naming file and
line: the rating decides whether the line is a transaction at all, so it cannot be guessed.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from tailor.data.dataset import SOURCE_FILE, SOURCE_ROW, Dataset
from tailor.data.importers.common import ImporterError, read_delimited

log = logging.getLogger(__name__)

RATINGS_FILE, USERS_FILE, ITEMS_FILE, GENRES_FILE = "u.data", "u.user", "u.item", "u.genre"
SPLIT_FILES = {"base": "ua.base", "test": "ua.test"}
REQUIRED_FILES = (RATINGS_FILE, USERS_FILE, ITEMS_FILE, GENRES_FILE, *SPLIT_FILES.values())
RATING_COLUMNS = ("user_id", "item_id", "rating", "unix_time")
USER_COLUMNS = ("customer_id", "age", "gender", "occupation", "zip")
ITEM_FIELDS = ("product_id", "description", "release_date", "video_release_date", "imdb_url")
RELEASE_DATE_FORMAT = "%d-%b-%Y"


def genre_column(name: str) -> str:
    """``"Children's"`` -> ``genre_childrens``, ``"Sci-Fi"`` -> ``genre_sci_fi``."""
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower().replace("'", "")).strip("_")
    return f"genre_{slug}"


def _check_directory(directory: Path) -> None:
    if not directory.is_dir():
        raise ImporterError(f"{directory}: no such MovieLens directory")
    missing = [name for name in REQUIRED_FILES if not (directory / name).is_file()]
    if missing:
        raise ImporterError(
            f"{directory}: missing MovieLens 100K file(s) {', '.join(missing)}; "
            f"expected {', '.join(REQUIRED_FILES)}"
        )


def _genres(path: Path) -> list[str]:
    """Genre names in flag order (``u.genre`` is ``name|index``; the index must be 0..18)."""
    frame, _ = read_delimited(path, "|", ("name", "index"))
    index = pd.to_numeric(frame["index"], errors="coerce")
    if not index.equals(pd.Series(np.arange(len(frame)), dtype=index.dtype)):
        raise ImporterError(f"{path}: genre indexes are not 0..{len(frame) - 1} in order")
    return frame["name"].tolist()


def _whole_numbers(frame: pd.DataFrame, column: str, path: Path) -> pd.Series:
    number = pd.to_numeric(frame[column], errors="coerce")
    bad = number.isna() | (number != np.floor(number))
    if bad.any():
        row = frame.loc[bad.idxmax()]
        raise ImporterError(f"{path}: line {row[SOURCE_ROW]}: column {column} is "
                            f"{row[column]!r}, not a whole number")
    return number.astype("int64")


def _split_labels(directory: Path, keys: pd.MultiIndex) -> tuple[pd.Series, int]:
    """``base``/``test`` per (user, item) key from ua.base/ua.test; None if in neither file."""
    parts = []
    for label, name in SPLIT_FILES.items():
        frame, _ = read_delimited(directory / name, "\t", RATING_COLUMNS)
        parts.append(frame[["user_id", "item_id"]].assign(split=label))
    splits = pd.concat(parts, ignore_index=True)
    twice = splits.duplicated(["user_id", "item_id"], keep=False)
    if twice.any():
        first = splits[twice].iloc[0]
        raise ImporterError(
            f"{directory}: rating user {first['user_id']} item {first['item_id']} is in both "
            f"{SPLIT_FILES['base']} and {SPLIT_FILES['test']}"
        )
    lookup = splits.set_index(["user_id", "item_id"])["split"]
    labels = lookup.reindex(keys)
    return pd.Series(labels.to_numpy(dtype=object), dtype=object), len(splits)


def _transactions(directory: Path, min_rating: int) -> tuple[pd.DataFrame, dict[str, int]]:
    path = directory / RATINGS_FILE
    ratings, blank = read_delimited(path, "\t", RATING_COLUMNS)
    rating = _whole_numbers(ratings, "rating", path)
    unix = pd.to_numeric(ratings["unix_time"], errors="coerce")
    keys = pd.MultiIndex.from_arrays([ratings["user_id"], ratings["item_id"]])
    split, split_rows = _split_labels(directory, keys)
    keep = (rating >= min_rating).to_numpy()
    timestamp = pd.to_datetime(unix, unit="s", errors="coerce").astype("datetime64[ns]")
    tx = pd.DataFrame({
        "order_id": (ratings["user_id"] + "-" + ratings["item_id"]).to_numpy(dtype=object),
        "customer_id": ratings["user_id"].to_numpy(dtype=object),
        "product_id": ratings["item_id"].to_numpy(dtype=object),
        "quantity": np.ones(len(ratings), dtype=np.int64),
        "unit_price": np.ones(len(ratings), dtype=np.float64),
        "timestamp": timestamp.to_numpy(),
        "rating": rating.to_numpy(),
        "split": split.to_numpy(),
        SOURCE_FILE: ratings[SOURCE_FILE].to_numpy(),
        SOURCE_ROW: ratings[SOURCE_ROW].to_numpy(),
    })[keep].reset_index(drop=True)
    counts = {
        "ratings": len(ratings),
        "ratings_kept": len(tx),
        "ratings_below_min_rating": int((~keep).sum()),
        "blank_rating_lines": blank,
        "split_file_rows": split_rows,
        "ratings_in_no_split": int(split.isna().sum()),
        "duplicate_user_item": int(keys.duplicated().sum()),
        "unparsable_timestamps": int(timestamp.isna().sum()),
    }
    return tx, counts


def _customers(directory: Path) -> tuple[pd.DataFrame, int]:
    users, blank = read_delimited(directory / USERS_FILE, "|", USER_COLUMNS)
    users["age"] = pd.to_numeric(users["age"], errors="coerce").astype("Int64")
    return users, blank


def _products(directory: Path, genres: list[str]) -> tuple[pd.DataFrame, dict[str, int]]:
    path = directory / ITEMS_FILE
    columns = [*ITEM_FIELDS, *(genre_column(g) for g in genres)]
    items, blank = read_delimited(path, "|", columns)
    flag_columns = columns[len(ITEM_FIELDS):]
    flags = items[flag_columns]
    bad = ~flags.isin(["0", "1"]).all(axis=1)
    if bad.any():
        raise ImporterError(f"{path}: line {items.loc[bad.idxmax(), SOURCE_ROW]}: "
                            f"genre flags must be 0 or 1")
    flags = flags.astype("int8")
    flagged = flags.to_numpy().astype(bool)
    first = np.where(flagged.any(axis=1), flagged.argmax(axis=1), -1)
    names = np.array([*genres, None], dtype=object)
    release = pd.to_datetime(items["release_date"], format=RELEASE_DATE_FORMAT, errors="coerce")
    products = pd.DataFrame({
        "product_id": items["product_id"],
        "category": names[first],
        "description": items["description"],
        "release_date": release.astype("datetime64[ns]"),
    })
    products = pd.concat([products, flags, items[[SOURCE_FILE, SOURCE_ROW]]], axis=1)
    counts = {
        "items": len(products),
        "blank_item_lines": blank,
        "items_without_release_date": int(release.isna().sum()),
        "items_with_several_genres": int((flagged.sum(axis=1) > 1).sum()),
        "items_without_genre": int((first < 0).sum()),
        "duplicate_titles": int(products["description"].duplicated(keep=False).sum()),
    }
    return products, counts


def _import(directory: Path, min_rating: int) -> tuple[Dataset, dict[str, int]]:
    directory = Path(directory)
    _check_directory(directory)
    genres = _genres(directory / GENRES_FILE)
    transactions, counts = _transactions(directory, min_rating)
    customers, blank_users = _customers(directory)
    products, item_counts = _products(directory, genres)
    counts |= item_counts | {"users": len(customers), "blank_user_lines": blank_users}
    dataset = Dataset(
        transactions=transactions, customers=customers, products=products,
        sources={"transactions": str(directory / RATINGS_FILE),
                 "customers": str(directory / USERS_FILE),
                 "products": str(directory / ITEMS_FILE)},
    )
    return dataset, counts


def import_movielens(directory: Path, min_rating: int = 4) -> Dataset:
    """Translate a MovieLens 100K directory into a raw data set (see the module docstring)."""
    dataset, counts = _import(Path(directory), min_rating)
    log.info("imported %s (min_rating=%s): %s", directory, min_rating, counts)
    return dataset


def movielens_counts(directory: Path, min_rating: int = 4) -> dict[str, int]:
    """The quirk counts :func:`import_movielens` logs, for docs and tests."""
    return _import(Path(directory), min_rating)[1]
