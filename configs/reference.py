"""The defaults as an annotated YAML file, rendered from the schema.

The schema is the only place a default is written; this turns it into the file a user starts a
``--config`` from (``tailor config defaults``), with each section's docstring and each field's
description as comments, so the reference can never drift from what the code does.
"""

from __future__ import annotations

import inspect
import textwrap

import yaml
from pydantic import BaseModel

from tailor.configs.schema import Settings

WIDTH = 96


def _comment(text: str, indent: str) -> list[str]:
    body = " ".join(text.split())
    return [f"{indent}# {line}" for line in textwrap.wrap(body, WIDTH - len(indent) - 2)]


def _section_lines(section: BaseModel, indent: str) -> list[str]:
    lines: list[str] = []
    values = section.model_dump()
    for name, field in type(section).model_fields.items():
        if field.description:
            lines += _comment(field.description, indent)
        value = values[name]
        if isinstance(value, dict | list):  # leaf collections in flow style: [a, b], {k: v}
            dumped = yaml.safe_dump({name: value}, sort_keys=False, default_flow_style=None,
                                    width=WIDTH - len(indent), allow_unicode=True).rstrip("\n")
        else:
            scalar = yaml.safe_dump(value, allow_unicode=True).removesuffix("\n...\n").strip()
            dumped = f"{name}: {scalar}"
        lines += [f"{indent}{line}" for line in dumped.splitlines()]
    return lines


def defaults_yaml(settings: Settings | None = None) -> str:
    """Every key with its default (or the value in ``settings``) and what it means."""
    settings = settings or Settings()
    lines = ["# tailor configuration: every key, its default and what it means. Pass a file",
             "# holding only the keys you change with `--config FILE`; `--set section.key=value`",
             "# overrides single keys."]
    for name in type(settings).model_fields:
        section = getattr(settings, name)
        lines.append("")
        doc = inspect.getdoc(type(section)) or ""
        lines += _comment(doc.split("\n\n")[0], "")
        lines.append(f"{name}:")
        lines += _section_lines(section, "  ")
    return "\n".join(lines) + "\n"
