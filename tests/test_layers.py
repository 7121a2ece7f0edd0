"""The import contracts of pyproject.toml ([tool.importlinter]) hold, and they do catch the imports they forbid."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(*, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = f"{pythonpath}{os.pathsep}{env.get('PYTHONPATH', '')}"
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-logo", "--no-cache", "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_layering_contracts_are_kept() -> None:
    done = lint_imports()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 kept, 0 broken" in done.stdout, done.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        # a use case reaching for an adapter (what app/hooks/webhook.py did before it had a port)
        ("app/hooks/webhook.py", "from ...adapters.webhook import WebhookSender", "Layers point one way"),
        # a use case reading the platform glue (what app/ did for the deadline before runtime/)
        ("app/sweep.py", "from ..platform import logs", "Layers point one way"),
        # the domain reaching up to a port
        ("domain/models.py", "from ..ports import Clock", "Layers point one way"),
        # a use case reading settings
        ("app/give_up.py", "from ..settings import Settings", "import no configuration"),
        # the functions' package reaching the demo (and through it the emulator)
        ("handlers/api/models.py", "from imagesync_dev.demo import run", "never reaches the emulator"),
        # the product's command reaching the dev tooling (what `imagesync demo` did before dev/)
        ("cli/tooling.py", "from imagesync_dev.chaos import run", "never imports the dev tooling"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(tmp_path: Path, module: str, line: str, contract: str) -> None:
    copy = tmp_path / "imagesync"
    shutil.copytree(ROOT / "shared" / "imagesync", copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}  # noqa\n", encoding="utf-8")
    done = lint_imports(pythonpath=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    broken = [text for text in done.stdout.split("\n\n") if "BROKEN" in text]
    assert any(contract in " ".join(b.split()) for b in broken), done.stdout
