"""What a plain install gives works: the wheel built from this tree, installed into a fresh venv (no extras, no
editable checkout on the path), runs every entry point it declares and the basic commands of the `imagesync` one.

The class (issue 11, item 3): an entry point whose imports are not in the install's dependencies is a traceback for
the user. Entry points are read from the wheel itself (console scripts from entry_points.txt, `python -m` modules
from the files), so a new one is covered without touching this test.
"""

from __future__ import annotations

import configparser
import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _clean_env(home: Path) -> dict[str, str]:
    """The user's environment without this checkout, its venv or any Tencent Cloud keys."""
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in drop and not k.startswith(("TENCENTCLOUD_", "IMAGESYNC_", "TKE_"))
    }
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    env["HOME"] = str(home)  # no ~/.tencentcloud or ~/.tccli of the machine's user
    env["COLUMNS"] = "200"
    return env


class Installed:
    def __init__(self, root: Path, wheel: Path) -> None:
        self.root = root
        self.wheel = wheel
        self.bin = root / "venv" / "bin"
        self.work = root / "work"
        self.work.mkdir()
        self.env = _clean_env(root / "home")
        (root / "home").mkdir()

    def run(self, args: list[str], timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
        return _run([str(self.bin / args[0]), *args[1:]], self.work, {**self.env, **env}, timeout)

    def console_scripts(self) -> list[str]:
        with zipfile.ZipFile(self.wheel) as whl:
            name = next(n for n in whl.namelist() if n.endswith(".dist-info/entry_points.txt"))
            parser = configparser.ConfigParser()
            parser.read_string(whl.read(name).decode())
        return list(parser["console_scripts"]) if parser.has_section("console_scripts") else []

    def main_modules(self) -> list[str]:
        """Every module `python -m` can run: packages with __main__.py, modules with a __main__ guard."""
        found = []
        with zipfile.ZipFile(self.wheel) as whl:
            for name in whl.namelist():
                if not name.endswith(".py") or ".dist-info/" in name:
                    continue
                module = name[:-3].replace("/", ".")
                if module.endswith(".__main__"):
                    found.append(module.removesuffix(".__main__"))
                elif 'if __name__ == "__main__":' in whl.read(name).decode("utf-8"):
                    found.append(module)
        return sorted(found)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("installed")
    dist = root / "dist"
    # setuptools builds in the tree's build/ and never removes what it copied there before: a module moved or deleted
    # since the last build would ride along in the wheel (it did: imagesync/bench after the move to dev/)
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
        root,
        dict(os.environ),
        timeout=600,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("imagesync-*.whl")
    venv.EnvBuilder(with_pip=True).create(root / "venv")
    inst = Installed(root, wheel)
    # The ordinary install: no extras. The constraints pin what the dev venv tested (PyPI or a mirror serves them).
    pip_env = {**inst.env, "HOME": os.environ.get("HOME", "")}  # the user's pip cache and configuration
    pip = _run(
        [
            str(inst.bin / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "-c",
            str(ROOT / "constraints.txt"),
            str(wheel),
        ],
        root,
        pip_env,
        timeout=600,
    )
    assert pip.returncode == 0, pip.stderr
    yield inst


def test_the_wheel_declares_the_entry_points_this_test_knows(installed: Installed) -> None:
    # not a limit on new entry points (the tests below run them all): a guard that the discovery finds something
    assert "imagesync" in installed.console_scripts()
    assert {"imagesync.cli", "imagesync_emulator"} <= set(installed.main_modules())


def test_the_wheel_holds_no_dev_tooling(installed: Installed) -> None:
    """The wheel is the library, the `imagesync` command and the emulator; dev/ (imagesync_dev: the demo, the chaos
    runner) is never in it, nor are the modules that lived in imagesync before they moved there."""
    with zipfile.ZipFile(installed.wheel) as whl:
        names = whl.namelist()
    packages = {name.split("/", 1)[0] for name in names if "/" in name and ".dist-info/" not in name}
    assert packages == {"imagesync", "imagesync_emulator"}, packages
    assert not [n for n in names if "imagesync_dev" in n or n.startswith("imagesync/bench/")]
    assert not {"imagesync/demo.py", "imagesync/demo_cloud.py"} & set(names)
    # the status page's templates are package data (`imagesync serve` renders them from the installed wheel)
    assert {"imagesync/handlers/api/templates/status.html", "imagesync/handlers/api/templates/status.css"} <= set(names)
    assert "imagesync-dev" not in installed.console_scripts()
    moved = installed.run(["imagesync", "demo"])
    assert moved.returncode == 2 and "Command.Moved" in moved.stderr, moved.stdout + moved.stderr


def test_every_console_script_runs_its_help(installed: Installed) -> None:
    for script in installed.console_scripts():
        result = installed.run([script, "--help"])
        assert result.returncode == 0, f"{script} --help: {result.stderr}"
        assert "Usage" in result.stdout or "usage" in result.stdout, script


def test_every_python_m_module_runs_its_help(installed: Installed) -> None:
    for module in installed.main_modules():
        result = installed.run(["python", "-m", module, "--help"])
        assert result.returncode == 0, f"python -m {module} --help: {result.stderr}"
        assert "usage" in result.stdout.lower(), module


def test_basic_commands_work_without_keys(installed: Installed) -> None:
    db = f"sqlite:///{installed.root / 'state.db'}"
    status = installed.run(
        ["imagesync", "status", "--json"],
        IMAGESYNC_DATABASE_URL=db,
        IMAGESYNC_QUEUE_PATH=str(installed.root / "queue.db"),
    )
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout) == []
    upgraded = installed.run(["imagesync", "db", "upgrade"], IMAGESYNC_DATABASE_URL=db)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "schema at revision" in upgraded.stdout
    checked = installed.run(["imagesync", "rules", "check", str(ROOT / "examples" / "rules.yaml"), "--json"])
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["valid"] is True


def test_installed_command_drives_the_installed_emulator(installed: Installed) -> None:
    """The SDK path too: the emulator from the wheel, and `imagesync copy --dry-run` through the official SDK."""
    proc = subprocess.Popen(
        [str(installed.bin / "python"), "-m", "imagesync_emulator", "--port", "0"],
        cwd=installed.work,
        env=installed.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        copied = installed.run(
            [
                "imagesync",
                "copy",
                "img-5ddkx3gh",
                "--from",
                "ap-guangzhou",
                "--to",
                "ap-shanghai",
                "--dry-run",
                "--json",
            ],
            IMAGESYNC_TENCENT_ENDPOINT=ready["endpoint"],
            TENCENTCLOUD_SECRET_ID=ready["secret_id"],
            TENCENTCLOUD_SECRET_KEY=ready["secret_key"],
            IMAGESYNC_DATABASE_URL=f"sqlite:///{installed.root / 'copy.db'}",
            IMAGESYNC_QUEUE_PATH=str(installed.root / "copy-queue.db"),
        )
        assert copied.returncode == 0, copied.stderr
        assert json.loads(copied.stdout)["replicas"][0]["destination_region"] == "ap-shanghai"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
