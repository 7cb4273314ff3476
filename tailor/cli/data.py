"""``tailor data``: generate, validate and import data sets (no Prefect: plain functions)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tailor.cli._common import ConfigOpt, SetOpt, fail, settings
from tailor.cli._render import generated_line

data_app = typer.Typer(help="Generate, import and validate data sets.", no_args_is_help=True)
import_app = typer.Typer(help="Turn a real export into the tailor data contract.",
                         no_args_is_help=True)
data_app.add_typer(import_app, name="import")

KINDS = ("retailer", "repeat_buying")


@data_app.command("generate")
def data_generate(
    out: Annotated[Path, typer.Option(help="Directory to write the data set and truth/ to.")],
    customers: Annotated[int | None, typer.Option(help="Number of customers.")] = None,
    products: Annotated[int | None, typer.Option(help="Number of products.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (same seed, same bytes).")] = None,
    kind: Annotated[str | None, typer.Option(
        help="retailer (default), or repeat-buying: one product bought repeatedly.")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Generate synthetic data with known truth: a retailer (segments, churn times, tastes)
    or single-product repeat buying (who is still a customer)."""
    from tailor.data.generate import generate, write_generated

    base = settings(config, set_).generate
    kind_ = None if kind is None else kind.replace("-", "_")
    if kind_ is not None and kind_ not in KINDS:
        raise fail(f"--kind {kind!r}: expected retailer or repeat-buying")
    changes = {k: v for k, v in {"customers": customers, "products": products, "seed": seed,
                                  "kind": kind_}.items() if v is not None}
    data = generate(base.model_copy(update=changes))
    write_generated(data, out)
    typer.echo(generated_line(data, out))


@data_app.command("validate")
def data_validate(
    data: Annotated[Path, typer.Option(help="Data set directory (CSV or Parquet tables).")],
    quarantine: Annotated[Path | None, typer.Option(
        help="Where to write rejected rows (default: DATA/_quarantine).")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Check a data set against the contract; write rejected rows with their rule."""
    from tailor.data.io import DataSourceError, read_dataset
    from tailor.data.validate import (
        DataContractError,
        format_summary,
        validate_dataset,
        write_failed_quarantine,
        write_quarantine,
    )

    resolved = settings(config, set_)
    out = quarantine or data / "_quarantine"
    try:
        result = validate_dataset(read_dataset(data), resolved.data)
    except DataSourceError as exc:
        raise fail(str(exc)) from None
    except DataContractError as exc:
        if exc.result is not None:
            typer.echo(format_summary(exc.result))
        raise fail(str(write_failed_quarantine(exc, out))) from None
    target = write_quarantine(result, out)
    typer.echo(format_summary(result))
    typer.echo(f"quarantine written to {target}")


@import_app.command("online-retail")
def import_online_retail_cmd(
    file: Annotated[Path, typer.Argument(help="UCI Online Retail export (.parquet or .csv).")],
    out: Annotated[Path, typer.Option(help="Directory to write the contract tables to.")],
) -> None:
    """Import the UCI Online Retail export (see docs/data.md for each quirk's treatment)."""
    from tailor.data.importers.common import ImporterError
    from tailor.data.importers.online_retail import import_online_retail
    from tailor.data.io import write_dataset

    try:
        dataset = import_online_retail(file)
    except ImporterError as exc:
        raise fail(str(exc)) from None
    write_dataset(dataset, out)
    typer.echo(f"wrote {len(dataset.transactions):,} order lines to {out}; "
               f"run `tailor data validate --data {out}` next")


@import_app.command("movielens")
def import_movielens_cmd(
    directory: Annotated[Path, typer.Argument(help="MovieLens 100K folder (u.data, u.user...).")],
    out: Annotated[Path, typer.Option(help="Directory to write the contract tables to.")],
    min_rating: Annotated[int, typer.Option(
        help="Ratings at or above this become interactions (0 keeps all).")] = 4,
) -> None:
    """Import MovieLens 100K: ratings become interactions, users and movies keep attributes."""
    from tailor.data.importers.common import ImporterError
    from tailor.data.importers.movielens import import_movielens
    from tailor.data.io import write_dataset

    try:
        dataset = import_movielens(directory, min_rating=min_rating)
    except ImporterError as exc:
        raise fail(str(exc)) from None
    write_dataset(dataset, out)
    typer.echo(f"wrote {len(dataset.transactions):,} interactions to {out}")
