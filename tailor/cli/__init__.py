"""The ``tailor`` command line. Every subcommand has ``--help``.

Configuration: the schema's defaults (``tailor config defaults``), then each ``--config FILE``,
then each ``--set section.key=value``. Standard variables keep their meaning (MLFLOW_TRACKING_URI,
PREFECT_API_URL).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tailor.cli import pipeline, registry, serve
from tailor.cli._common import DEBUG
from tailor.cli.config import config_app
from tailor.cli.data import data_app
from tailor.cli.stack import stack_app

__all__ = ["app", "main"]

app = typer.Typer(help=__doc__, no_args_is_help=True, pretty_exceptions_enable=False)


@app.callback()
def _options(debug: Annotated[bool, typer.Option(
        "--debug", help="On a failure, show Prefect's logs and the full traceback.")] = False,
             ) -> None:
    DEBUG["on"] = debug


# Registered here, in one table, so `tailor --help` lists them in this order.
for _name, _command in (
        ("prepare", pipeline.prepare),
        ("train", pipeline.train),
        ("run", pipeline.run),
        ("models", registry.models_cmd),
        ("promote", registry.promote_cmd),
        ("rollback", registry.rollback_cmd),
        ("audit", registry.audit_cmd),
        ("doctor", registry.doctor_cmd),
        ("ui", registry.ui_cmd),
        ("score", pipeline.score),
        ("serve", serve.serve_cmd),
        ("deploy", serve.deploy_cmd),
        ("serve-flows", serve.serve_flows_cmd),
):
    app.command(_name)(_command)
app.add_typer(data_app, name="data")
app.add_typer(config_app, name="config")
app.add_typer(stack_app, name="stack")


def main() -> None:  # pragma: no cover - console entry point
    app(sys.argv[1:])
