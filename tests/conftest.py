"""Shared fixtures: where the real data sets are, the PostgreSQL server for SQL tests, and
customer features of a small generated retailer."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TAILOR_SHARED_DATA", ROOT.parent / "shared" / "data"))
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip: a user's fresh clone has no real data sets beside it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data sets not found at {SHARED_DATA} (set TAILOR_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def online_retail_file(shared_data: Path) -> Path:
    path = shared_data / "online-retail" / "online_retail.parquet"
    if not path.exists():
        pytest.skip(f"Online Retail export not found at {path}")
    return path


@pytest.fixture(scope="session")
def movielens_dir(shared_data: Path) -> Path:
    path = shared_data / "movielens-100k"
    if not (path / "u.data").exists():
        pytest.skip(f"MovieLens 100K not found at {path}")
    return path


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A reachable PostgreSQL URL (TAILOR_TEST_PG_URL or the local default), or skip."""
    import sqlalchemy as sa

    url = os.environ.get("TAILOR_TEST_PG_URL", DEFAULT_PG_URL)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except Exception as exc:  # noqa: BLE001 - any connection failure means "no server here"
        pytest.skip(f"PostgreSQL not reachable at {url}: {exc.__class__.__name__}")
    finally:
        engine.dispose()
    return url


@pytest.fixture
def pg_schema(pg_url: str) -> Iterator[tuple[str, str]]:
    """A fresh PostgreSQL schema for one test, dropped afterwards: (url, schema)."""
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'create schema "{schema}"'))
    try:
        yield pg_url, schema
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'drop schema "{schema}" cascade'))
        engine.dispose()


@pytest.fixture(scope="module")
def retailer_features() -> pd.DataFrame:
    """``customer_features`` of a small generated retailer (category shares, attributes)."""
    from tailor.configs import load_settings
    from tailor.data.generate import generate
    from tailor.models.features import customer_features, default_as_of

    settings = load_settings([], ["generate.customers=300", "generate.products=80",
                                  "generate.messy_share=0"])
    data = generate(settings.generate).dataset
    return customer_features(data.transactions, default_as_of(data.transactions),
                             settings.features, customers=data.customers,
                             products=data.products)
