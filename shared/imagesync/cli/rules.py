"""rules check and plan: a rule file validated, and what the rules would copy now."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ..domain.errors import ImageSyncError
from .common import console, err, fail, services


def rules_check(
    file: Annotated[Path, typer.Argument(help="rule file: YAML, or JSON when it ends in .json")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Validate a rule file (nothing is called, nothing recorded); exit 2 with every problem when it is invalid."""
    from ..domain.rules import RulesInvalid, loads_rules

    try:
        text = file.read_text(encoding="utf-8")
        ruleset = loads_rules(text, fmt="json" if file.suffix.lower() == ".json" else "yaml", source=str(file))
    except OSError as exc:
        err.print(f"[red]error[/red] Rules.Invalid: {file}: cannot be read: {exc.strerror or exc}")
        raise typer.Exit(2) from exc
    except UnicodeDecodeError as exc:  # a ValueError, not an OSError: without this, a traceback
        err.print(f"[red]error[/red] Rules.Invalid: {file}: not UTF-8 text ({exc.reason} at byte {exc.start})")
        raise typer.Exit(2) from exc
    except RulesInvalid as exc:
        if as_json:
            print(json.dumps({"valid": False, "error": exc.to_dict()}, indent=2))
        err.print(f"[red]error[/red] {exc.code}: {file}")
        for problem in exc.details.get("errors") or [exc.message]:
            err.print(f"  - {escape(str(problem))}", highlight=False)  # a pattern holds [a-z]: not markup
        raise typer.Exit(2) from exc
    if as_json:
        summary = [
            {
                "name": r.name,
                "enabled": r.enabled,
                "source_regions": r.selector.source_regions,
                "destinations": r.destinations,
                "hooks": [h.key for h in r.all_hooks],
                "reconcile": r.reconcile,
            }
            for r in ruleset.rules
        ]
        print(json.dumps({"valid": True, "rules": summary}, indent=2))
        return
    table = Table(title=f"{file}: {len(ruleset.rules)} rule(s), valid")
    for column in ("rule", "enabled", "from", "to", "hooks", "reconcile"):
        table.add_column(column)
    for r in ruleset.rules:
        table.add_row(
            r.name,
            "yes" if r.enabled else "no",
            " ".join(r.selector.source_regions),
            " ".join(r.destinations),
            " ".join(h.key for h in r.all_hooks) or "-",
            "yes" if r.reconcile else "no",
        )
    console.print(table)


def plan(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Show what the rules would copy now (the reconcile pass without its window), copying nothing."""
    svc = services()
    try:
        result = svc.rule_engine().plan()
    except ImageSyncError as exc:
        fail(exc)
    if as_json:
        print(json.dumps(result, indent=2, default=str))
        return
    table = Table(title=f"plan: {result['copies']} copies wanted; {result['limit']} per reconcile run")
    for column in ("rule", "image", "name", "from", "to", "copy name", "why", "next run"):
        table.add_column(column)
    for row in result["plan"]:
        refused = row["refused"]
        table.add_row(
            row["rule"],
            row["image_id"],
            row["image_name"],
            row["source_region"],
            " ".join(row["destinations"]),
            row["copy_name"],
            f"refused {refused['code']}" if refused else row["reason"],
            "yes" if row["within_limit"] else "later" if not refused else "never",
        )
    console.print(table)
    if not result["plan"]:
        console.print("nothing to copy: every copy the rules want exists or is in flight")
