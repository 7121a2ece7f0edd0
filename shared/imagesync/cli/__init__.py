"""The `imagesync` command line: the same core as the SCF functions, on one machine (SQLite state, local queue).

Given real credentials and no IMAGESYNC_TENCENT_ENDPOINT, the same commands drive the real Tencent Cloud. Keys are
looked for only when a command calls the cloud (status, db upgrade and rules check never do), along the official
SDK's chain: the environment, ~/.tencentcloud/credentials, tccli's ~/.tccli/default.credential, the CVM instance
role (imagesync.adapters.credentials.CredentialChain).

Every command is a thin parse-call-print over a use case or a handler (the logic lives in app/, handlers/ and
deploy_steps.py), written in the module of its group: replications (copy, status, retry), functions (sweep, deliver,
invoke, serve), tooling (deploy-steps, emulator, the moved dev commands), rules (rules check, plan), db (db
upgrade); common holds what they share. This file assembles them: it is the one list of the command's surface
(names, order in --help, hidden ones) that README's command table mirrors.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from ..domain.errors import ImageSyncError
from . import db, functions, replications, rules, tooling
from .common import print_error


class _App(typer.Typer):
    """Typer, plus: an ImageSyncError a command lets escape (missing keys found by the first cloud call, say) is a
    coded one-line error and exit 2, never a traceback."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except ImageSyncError as exc:
            print_error(exc)
            sys.exit(2)


app = _App(
    help="Copy Tencent Cloud CVM custom images across regions, track every copy to the end, run hooks.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="The state table's schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
rules_app = typer.Typer(help="Replication rules (IMAGESYNC_RULES_FILE / IMAGESYNC_RULES_JSON).", no_args_is_help=True)
app.add_typer(rules_app, name="rules")

# The moved commands take any arguments, so that `imagesync demo --anything` still answers Command.Moved.
_ANY_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}

# In this order in --help (the groups, db and rules, come after the commands).
app.command()(replications.copy)
app.command()(replications.status)
app.command()(replications.retry)
app.command()(functions.sweep)
app.command()(functions.deliver)
# deploy-steps has its own argparse parser: every argument, --help included, goes to it untouched.
app.command("deploy-steps", context_settings={**_ANY_ARGS, "help_option_names": []}, add_help_option=False)(
    tooling.deploy_steps
)
app.command()(functions.invoke)
app.command()(tooling.emulator)
app.command(hidden=True, context_settings=_ANY_ARGS)(tooling.demo)
app.command()(functions.serve)
rules_app.command("check")(rules.rules_check)
app.command()(rules.plan)
db_app.command("upgrade")(db.db_upgrade)
app.command(hidden=True, context_settings=_ANY_ARGS)(tooling.bench)


def main() -> None:  # pragma: no cover - console entry
    app()
