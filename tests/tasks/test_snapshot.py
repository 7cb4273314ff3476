"""The serving snapshot on disk: versioned directories, one atomic publish, kills, pruning.

Everything is written by the score flow's writer (``adapters.score_output.write_snapshot``) or its
lower-level steps, and read by the serving API's loader (``deployments.api.snapshot_state``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tailor.adapters import snapshot
from tailor.adapters.score_output import write_snapshot
from tailor.deployments.api.snapshot_state import load_snapshot, snapshot_stamp
from tailor.models.features import BASE_COLUMNS

ROOT = Path(__file__).resolve().parents[2]


def features(as_of: str, customers: int = 3) -> pd.DataFrame:
    """Customer features the loader accepts (it checks the contract), tagged with ``as_of``."""
    ids = pd.Index([f"C{i}" for i in range(customers)], name="customer_id", dtype=object)
    frame = pd.DataFrame({c: np.full(customers, 0.0 if c == "trend" else 1.0)
                          for c in BASE_COLUMNS}, index=ids)
    return frame.assign(recency_days=np.arange(customers, dtype=float),
                        tenure_days=float(customers), as_of=as_of)


def attributes(customers: int = 3) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": [f"C{i}" for i in range(customers)],
                         "region": "north", "_source_file": "x.csv"})


def write(directory: Path, as_of: str, keep: int = 3, customers: int = 3) -> Path:
    return write_snapshot(directory, features(as_of, customers), attributes(customers),
                          {"as_of": as_of}, keep)


def stored(directory: Path) -> list[str]:
    return sorted(p.name for p in (directory / snapshot.VERSIONS_DIR).iterdir())


def test_each_write_is_a_new_directory_published_by_the_pointer(tmp_path: Path) -> None:
    first = write(tmp_path, "2024-01-01")
    second = write(tmp_path, "2024-01-02", customers=5)
    assert first.parent == second.parent == tmp_path / snapshot.VERSIONS_DIR
    assert (tmp_path / snapshot.CURRENT_FILE).read_text() == f"{second.name}\n"
    assert stored(tmp_path) == sorted([first.name, second.name])
    assert not any((tmp_path / name).exists() for name in snapshot.FILES)  # nothing on top

    loaded = load_snapshot(tmp_path)
    assert loaded.path == second and loaded.as_of == "2024-01-02"
    assert len(loaded.features) == 5 and loaded.manifest["written_at"]
    assert "_source_file" not in loaded.customers.columns
    assert loaded.stamp == snapshot_stamp(tmp_path)
    # the first one is intact beside it (a rollback is one publish away)
    assert json.loads((first / snapshot.MANIFEST_FILE).read_text())["as_of"] == "2024-01-01"


def test_a_write_that_never_publishes_is_never_read(tmp_path: Path) -> None:
    write(tmp_path, "2024-01-01")
    served = snapshot_stamp(tmp_path)
    # killed between the last fsync and the publish: complete, but not pointed to
    unpublished = snapshot.stage(tmp_path, {snapshot.FEATURES_FILE: features("2024-01-09")
                                            .reset_index()}, {"as_of": "2024-01-09"})
    # killed halfway through the files: only a partial directory
    partial = tmp_path / snapshot.VERSIONS_DIR / f".{snapshot.new_name()}.partial"
    partial.mkdir()
    features("2024-01-10").reset_index().to_parquet(partial / snapshot.FEATURES_FILE)

    assert snapshot_stamp(tmp_path) == served
    assert load_snapshot(tmp_path).as_of == "2024-01-01"
    assert unpublished.is_dir()

    newest = write(tmp_path, "2024-01-11")
    assert load_snapshot(tmp_path).path == newest
    assert not partial.exists()  # pruned by the next write


def test_a_writer_killed_mid_write_leaves_the_previous_snapshot_served(tmp_path: Path) -> None:
    write(tmp_path, "2024-01-01")
    # a real SIGKILL after the tables are on disk, before the manifest and the publish
    script = textwrap.dedent(f"""
        import os, signal
        import pandas as pd
        from tailor.adapters import snapshot

        def killed(*_args):
            os.kill(os.getpid(), signal.SIGKILL)

        snapshot._write_json = killed
        frame = pd.DataFrame({{"customer_id": ["C9"], "recency_days": [1]}})
        snapshot.write({str(tmp_path)!r}, {{snapshot.FEATURES_FILE: frame}}, {{}}, keep=3)
    """)
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert run.returncode == -9, run.stderr.decode()[-2000:]
    leftovers = [n for n in stored(tmp_path) if n.endswith(snapshot.PARTIAL_SUFFIX)]
    assert len(leftovers) == 1

    assert load_snapshot(tmp_path).as_of == "2024-01-01"
    write(tmp_path, "2024-01-02")  # the dead writer's lock is gone; its leftovers too
    assert load_snapshot(tmp_path).as_of == "2024-01-02"
    assert not any(n.endswith(snapshot.PARTIAL_SUFFIX) for n in stored(tmp_path))


def test_pruning_keeps_the_newest_n_and_the_published_one(tmp_path: Path) -> None:
    written = [write(tmp_path, f"2024-01-0{day}", keep=2) for day in range(1, 6)]
    assert stored(tmp_path) == [p.name for p in written[-2:]]

    snapshot.publish(tmp_path, written[-2].name)  # a rollback to the previous one
    assert load_snapshot(tmp_path).as_of == "2024-01-04"
    snapshot.prune(tmp_path, keep=1)
    assert stored(tmp_path) == [p.name for p in written[-2:]]  # newest 1 + the published one

    newest = write(tmp_path, "2024-01-06", keep=1)
    assert stored(tmp_path) == [newest.name]
    with pytest.raises(ValueError, match="at least 1"):
        snapshot.prune(tmp_path, keep=0)


def test_an_old_layout_snapshot_is_read_until_the_first_new_write(tmp_path: Path) -> None:
    features("2023-12-31").reset_index().to_parquet(tmp_path / snapshot.FEATURES_FILE)
    (tmp_path / snapshot.MANIFEST_FILE).write_text(json.dumps({"as_of": "2023-12-31"}))
    old = load_snapshot(tmp_path)
    assert old.path == tmp_path and old.as_of == "2023-12-31"
    assert snapshot_stamp(tmp_path) == old.stamp

    new = write(tmp_path, "2024-01-01")
    assert load_snapshot(tmp_path).path == new
    assert not (tmp_path / snapshot.FEATURES_FILE).exists()  # never served stale by hand


def test_a_broken_pointer_is_a_clear_error(tmp_path: Path) -> None:
    assert snapshot_stamp(tmp_path) is None
    with pytest.raises(FileNotFoundError, match="run `tailor score`"):
        load_snapshot(tmp_path)

    (tmp_path / snapshot.CURRENT_FILE).write_text("../../etc\n")
    with pytest.raises(ValueError, match="not a snapshot name: re-run `tailor score`"):
        load_snapshot(tmp_path)

    gone = snapshot.new_name()
    (tmp_path / snapshot.CURRENT_FILE).write_text(gone)
    with pytest.raises(FileNotFoundError, match=f"names {gone}.*re-run `tailor score`"):
        load_snapshot(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a complete snapshot"):
        snapshot.publish(tmp_path, gone)
