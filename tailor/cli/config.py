"""``tailor config``: inspect the configuration the other commands would run with."""

from __future__ import annotations

import json

import typer

from tailor.cli._common import ConfigOpt, SetOpt, settings

config_app = typer.Typer(help="Inspect the resolved configuration.", no_args_is_help=True)


@config_app.command("show")
def config_show(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Print the configuration after merging files and overrides."""
    resolved = settings(config, set_)
    typer.echo(json.dumps(resolved.model_dump(mode="json"), indent=2))


@config_app.command("defaults")
def config_defaults() -> None:
    """Print every key with its default and meaning, as a YAML file to start a --config from."""
    from tailor.configs.reference import defaults_yaml

    typer.echo(defaults_yaml(), nl=False)
