"""Build the SCF packages: dist/code.zip (the three entries + the imagesync modules they import) and dist/layer.zip
(their third-party dependencies as manylinux x86_64 cp310 wheels, unpacked), and print their sizes.

Usage (from the repo root, with the Python 3.10 venv, as `make package` runs it):

    .venv/bin/python scripts/package.py [--dist dist] [--wheels dist/wheels] [--no-bytecode]

Layout (docs/deploy.md says why):
- code.zip root: `copy_request.py`, `status_sweep.py`, `completion_hook.py` (each a copy of functions/<name>/index.py),
  and `imagesync/` with only the modules those entries import (found by reading their imports, lazy ones included),
  plus `imagesync/migrations/`. SCF unpacks it to /var/user; the handler of each function is `<name>.main_handler`.
- layer.zip root: the packages themselves (no `python/` folder; no stubs; extension modules stripped of their debug
  sections with binutils' `strip`, which the build therefore needs). SCF unpacks layers to /opt, and the Python
  runtime's PYTHONPATH is `/var/user:/opt`.
- Bytecode (docs/benchmarks.md, "Cold import and the deploy package"): SCF's code and layer folders are read-only,
  so a module shipped without bytecode is compiled in memory by every cold start that imports it (0.3-0.5 s more
  per cold start on the build machine). Both packages therefore ship CPython 3.10 bytecode, compiled here (the
  build must run on 3.10), as unchecked-hash .pyc files (no timestamps: reproducible, and valid whatever times the
  unzip gives the files).
  code.zip keeps its sources beside the bytecode (`__pycache__/`); the layer ships the third-party modules as
  bytecode only (`module.pyc` in place of `module.py`), which keeps code + layer within 30 MB unzipped (sources and
  bytecode together would be about 43 MB); a traceback through a library frame then names its file and line
  (`/opt/...`) without the source text.

What goes into the layer is computed, not listed: the distributions that provide the third-party modules the code
imports, their requirements (markers evaluated for CPython 3.10 on Linux x86_64), the `mysql` extra (the driver is
chosen by the database URL, so no import names it), minus DROPPED. Every version comes from constraints.txt (the
versions tested are the versions shipped); a distribution without a pin there is an error.

Exit status: 0 built; 1 a package is over SCF's limits, a pin is missing or a download failed.
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "shared"
PACKAGE = "imagesync"
FUNCTIONS = ("copy_request", "status_sweep", "completion_hook")

#: SCF limits (docs/facts.md#F-SCF-2): a zip uploaded through the API, and code plus all layers once unpacked.
MAX_ZIP_BYTES = 50 * 1024 * 1024
MAX_UNZIPPED_BYTES = 500 * 1024 * 1024

#: The target runtime: SCF Python3.10 on x86_64 (CentOS 7 based, glibc 2.17 = manylinux2014).
PLATFORM = "manylinux2014_x86_64"
PYTHON_VERSION = "3.10"
MARKER_ENV = {
    "implementation_name": "cpython",
    "implementation_version": "3.10.0",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "platform_system": "Linux",
    "python_full_version": "3.10.0",
    "python_version": "3.10",
    "sys_platform": "linux",
    "extra": "",
}

#: pyproject extras whose distributions ship although no import names them.
EXTRAS = ("mysql",)
#: Required by a dependency's metadata but never imported on our code paths. greenlet: SQLAlchemy imports it only
#: for its asyncio extension (sqlalchemy.util.concurrency guards the import); imagesync is synchronous.
DROPPED = {"greenlet": "only SQLAlchemy's asyncio extension imports it"}
#: imagesync folders that are data (loaded by path, never imported by name): shipped whole. Alembic's migrations,
#: the status page's templates.
DATA_PACKAGES = ("migrations", "handlers/api/templates")
#: Files never taken from the sources or the wheels: bytecode (the build compiles its own: compile_bytecode), and
#: type stubs (never imported).
PRUNED_SUFFIXES = (".pyc", ".pyo", ".pyi")
#: Where SCF unpacks each package: the paths compiled into the bytecode, so tracebacks name the files as they are
#: laid out at run time.
CODE_ROOT, LAYER_ROOT = "/var/user", "/opt"
#: Extension modules get their symbol and debug sections removed (`strip --strip-unneeded`, binutils): several wheels
#: ship them with DWARF debug info (SQLAlchemy's cyextension: 5.0 MB, 0.6 MB once stripped; PyYAML's _yaml: 2.6 MB,
#: 0.4 MB), which the interpreter never reads. What a shared object exports for dlopen is kept.
STRIP_COMMAND = ("strip", "--strip-unneeded")


class PackageError(Exception):
    """The package cannot be built as asked (missing pin, download failure, over a limit)."""


@dataclass
class Built:
    """What build() made: paths, sizes and contents (the test and `make package` read it)."""

    code_zip: Path
    layer_zip: Path
    code_dir: Path
    layer_dir: Path
    modules: list[str] = field(default_factory=list)
    distributions: dict[str, str] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)


# -- code: the imagesync modules the entries import ------------------------------------------------------------------


def _module_file(module: str) -> Path | None:
    """The source file of an imagesync module (package __init__ or module file), or None if it is not one."""
    base = LIBRARY.joinpath(*module.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path, module: str) -> Iterator[str]:
    """Every module name `path` imports, anywhere in it (lazy imports in functions and TYPE_CHECKING blocks too)."""
    is_package = path.name == "__init__.py"
    package_parts = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            yield prefix
            # `from pkg import name` may name a submodule: try each as one.
            yield from (f"{prefix}.{alias.name}" for alias in node.names)


def _entry_imports(name: str) -> list[str]:
    return list(_imports(ROOT / "functions" / name / "index.py", name))


def code_closure(entries: Iterable[str] = FUNCTIONS) -> tuple[list[str], set[str]]:
    """(imagesync modules the entries need, sorted; top-level names of every other module they import)."""
    seen: set[str] = set()
    external: set[str] = set()
    todo = [imported for entry in entries for imported in _entry_imports(entry)]
    while todo:
        name = todo.pop()
        top = name.split(".")[0]
        if top != PACKAGE:
            if top and top not in sys.stdlib_module_names and top != "__future__":
                external.add(name)
            continue
        # A module also needs every package above it (their __init__ runs first).
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):
            module = ".".join(parts[:depth])
            if module in seen:
                continue
            path = _module_file(module)
            if path is None:
                continue  # `from pkg import some_function`: not a module
            seen.add(module)
            todo.extend(_imports(path, module))
    return sorted(seen), external


def stage_code(target: Path, modules: Iterable[str]) -> None:
    """Write the code package's tree: the entries at the root, the modules under imagesync/, the data packages."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name in FUNCTIONS:
        shutil.copy2(ROOT / "functions" / name / "index.py", target / f"{name}.py")
    for module in modules:
        source = _module_file(module)
        assert source is not None
        dest = target / source.relative_to(LIBRARY)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest)
    for data in DATA_PACKAGES:
        source_dir = LIBRARY / PACKAGE / data
        for source in sorted(source_dir.rglob("*")):
            if source.is_file() and "__pycache__" not in source.parts and not source.name.endswith(PRUNED_SUFFIXES):
                dest = target / source.relative_to(LIBRARY)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, dest)


# -- layer: the distributions those modules need ---------------------------------------------------------------------


@lru_cache(maxsize=1)
def _top_level_owners() -> dict[str, set[str]]:
    """Top-level import name -> installed distributions whose files provide it (read from each RECORD, since
    Python 3.10's packages_distributions() only reads top_level.txt, which hatch- and maturin-built wheels lack)."""
    owners: dict[str, set[str]] = {}
    for dist in metadata.distributions():
        for path in dist.files or []:
            first = path.parts[0]
            if first.endswith((".dist-info", ".data")) or first in ("..", "__pycache__"):
                continue
            top = first.split(".")[0] if len(path.parts) == 1 else first
            owners.setdefault(top, set()).add(dist.metadata["Name"])
    return owners


def _distribution_of(module: str) -> str:
    """The installed distribution providing `module` (the deepest match: tencentcloud.cvm -> the cvm SDK package)."""
    top = module.split(".")[0]
    candidates = sorted(_top_level_owners().get(top, set()))
    if len(set(candidates)) == 1:
        return canonicalize_name(candidates[0])
    parts = module.split(".")
    for depth in range(len(parts), 0, -1):
        prefix = "/".join(parts[:depth])
        owners = {
            canonicalize_name(dist)
            for dist in set(candidates)
            if any(str(f).startswith(prefix + "/") or str(f) == prefix + ".py" for f in metadata.files(dist) or [])
        }
        if len(owners) == 1:
            return owners.pop()
    raise PackageError(f"cannot tell which installed distribution provides {module!r} (candidates: {candidates})")


def _extra_requirements(extra: str) -> list[Requirement]:
    """The requirements of one optional-dependencies group of pyproject.toml."""
    try:
        import tomllib  # type: ignore[import-not-found,unused-ignore]
    except ModuleNotFoundError:  # Python 3.10: tomli (an Alembic dependency, so present in the venv)
        import tomli as tomllib  # type: ignore[no-redef,import-not-found,unused-ignore]
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [Requirement(r) for r in data["project"]["optional-dependencies"][extra]]


def layer_distributions(external_modules: Iterable[str]) -> list[str]:
    """Canonical names of the distributions the layer must hold (transitive, markers for the target, minus DROPPED)."""
    wanted = {_distribution_of(module) for module in external_modules}
    for extra in EXTRAS:
        wanted |= {canonicalize_name(r.name) for r in _extra_requirements(extra)}
    closure: set[str] = set()
    todo = sorted(wanted)
    while todo:
        name = todo.pop()
        if name in closure or name in DROPPED:
            continue
        closure.add(name)
        for raw in metadata.requires(name) or []:
            req = Requirement(raw)
            if req.marker is None or Marker(str(req.marker)).evaluate(MARKER_ENV):
                todo.append(canonicalize_name(req.name))
    return sorted(closure)


def pins(constraints: Path = ROOT / "constraints.txt") -> dict[str, str]:
    """name -> version from constraints.txt."""
    out = {}
    for line in constraints.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            out[canonicalize_name(name)] = version.strip()
    return out


def fetch_wheels(pinned: dict[str, str], cache: Path) -> dict[str, Path]:
    """One cp310 manylinux2014 x86_64 (or pure) wheel per pinned distribution, downloaded into `cache` once."""
    cache.mkdir(parents=True, exist_ok=True)

    def cached() -> dict[str, Path]:
        found = {}
        for wheel in cache.glob("*.whl"):
            name, version, _build, _tags = parse_wheel_filename(wheel.name)
            if pinned.get(name) == str(version):
                found[name] = wheel
        return found

    missing = sorted(set(pinned) - set(cached()))
    if missing:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--only-binary=:all:",
            "--platform",
            PLATFORM,
            "--python-version",
            PYTHON_VERSION,
            "--implementation",
            "cp",
            "--abi",
            "cp310",
            "--dest",
            str(cache),
            *(f"{name}=={pinned[name]}" for name in missing),
        ]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise PackageError(f"pip download failed for {missing}:\n{result.stderr.strip()}")
    found = cached()
    still = sorted(set(pinned) - set(found))
    if still:
        raise PackageError(f"no wheel for {still} after download")
    return found


def stage_layer(target: Path, wheels: Iterable[Path]) -> None:
    """Unpack the wheels into `target` (= /opt at run time), without their bytecode (compile_bytecode makes it) or
    stubs."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for wheel in sorted(wheels):
        with zipfile.ZipFile(wheel) as archive:
            for info in archive.infolist():
                name = _installed_name(info.filename)
                if info.is_dir() or name is None or _pruned(name):
                    continue
                dest = target / name
                dest.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out)
                mode = (info.external_attr >> 16) & 0o777
                os.chmod(dest, mode or 0o644)
    strip_extensions(target)


def strip_extensions(target: Path) -> None:
    """Remove debug and symbol sections from every extension module under `target` (raises PackageError without
    binutils' strip: the layer would be several MB larger than the one tested)."""
    objects = sorted(str(p) for p in target.rglob("*.so"))
    if not objects:
        return
    if shutil.which(STRIP_COMMAND[0]) is None:
        raise PackageError("binutils' `strip` is not on PATH; it strips the layer's extension modules (apt: binutils)")
    result = subprocess.run([*STRIP_COMMAND, *objects], capture_output=True, text=True)
    if result.returncode != 0:
        raise PackageError(f"strip failed:\n{result.stderr.strip()}")


def _installed_name(name: str) -> str | None:
    """Where a wheel member goes in site-packages: `.data/purelib|platlib/` members move to the root; the other
    `.data` schemes (scripts, headers, data) are not importable and are not shipped."""
    first, _, rest = name.partition("/")
    if not first.endswith(".data"):
        return name
    scheme, _, inner = rest.partition("/")
    return inner if scheme in ("purelib", "platlib") and inner else None


def _pruned(name: str) -> bool:
    return "__pycache__/" in name or name.endswith(PRUNED_SUFFIXES)


# -- bytecode ---------------------------------------------------------------------------------------------------------


def compile_bytecode(target: Path, run_root: str, *, sourceless: bool) -> None:
    """Compile every .py under `target` to unchecked-hash CPython 3.10 bytecode. `sourceless`: the .pyc replaces the
    .py (legacy layout, `name.pyc` beside where `name.py` was), else it goes to `__pycache__/` beside the source. A
    file that does not compile (e.g. a template with a .py name) is shipped as it is. Raises PackageError unless the
    build runs on CPython 3.10: bytecode is specific to the interpreter's version, and SCF runs 3.10.

    Each file is compiled in a child forked from one fresh interpreter with a fixed hash seed: marshal writes an
    object by reference or by value depending on the compiling process's reference counts, and a set in its
    iteration order, so only the same process state gives the same bytes (the zips are reproducible; compiling
    file after file in one process gave a few files different bytes from one build to the next)."""
    if sys.implementation.name != "cpython" or sys.version_info[:2] != (3, 10):
        running = f"{sys.implementation.name} {sys.version.split()[0]}"
        raise PackageError(f"the bytecode must be made by CPython {PYTHON_VERSION} (SCF's runtime), not {running}")
    result = subprocess.run(
        [sys.executable, "-s", "-c", _COMPILE, str(target), run_root, "sourceless" if sourceless else "cached"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},  # a set constant is written in its iteration order
    )
    if result.returncode != 0:
        raise PackageError(f"compiling the bytecode under {target} failed:\n{result.stderr.strip()}")


_COMPILE = """
import importlib.util, os, py_compile, sys
target, run_root, sourceless = sys.argv[1], sys.argv[2], sys.argv[3] == "sourceless"
# os.path, not pathlib: pathlib interns every path part, and a part that is also a name in the code compiled (a
# folder `sources`, a variable `sources`) would then be written by reference or not depending on what is alive
sources = sorted(
    os.path.join(folder, name) for folder, _, names in os.walk(target) for name in names if name.endswith(".py")
)
for source in sources:
    relative = os.path.relpath(source, target).replace(os.sep, "/")
    compiled = source[:-3] + ".pyc" if sourceless else importlib.util.cache_from_source(source)
    pid = os.fork()
    if pid == 0:  # each file from the same process state
        try:
            py_compile.compile(
                source, cfile=compiled, dfile=run_root + "/" + relative, doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            )
        except py_compile.PyCompileError:
            os._exit(3)
        except BaseException:
            os._exit(1)
        os._exit(0)
    status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if status == 3:
        continue  # not Python (a template with a .py name): shipped as it is
    if status != 0:
        sys.exit(source + ": compiling failed")
    if sourceless:
        os.unlink(source)
"""


# -- zips and sizes --------------------------------------------------------------------------------------------------


def write_zip(source: Path, target: Path) -> None:
    """A reproducible zip of `source`'s tree: sorted entries, fixed timestamps, modes kept (same input, same bytes,
    so an unchanged layer can be recognised and not republished)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (path.stat().st_mode & 0o777 | 0o100000) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())


def unzipped_size(archive: Path) -> int:
    with zipfile.ZipFile(archive) as z:
        return sum(info.file_size for info in z.infolist())


def check_limits(sizes: dict[str, int]) -> list[str]:
    """The SCF limits `sizes` break (empty when within them)."""
    problems = []
    for name in ("code", "layer"):
        if sizes[f"{name}_zip"] > MAX_ZIP_BYTES:
            size = sizes[f"{name}_zip"]
            problems.append(f"{name}.zip is {size} bytes; a zip uploaded to SCF holds at most {MAX_ZIP_BYTES}")
    total = sizes["code_unzipped"] + sizes["layer_unzipped"]
    if total > MAX_UNZIPPED_BYTES:
        problems.append(f"code + layer unzip to {total} bytes; SCF allows at most {MAX_UNZIPPED_BYTES}")
    return problems


def build(dist: Path = ROOT / "dist", wheels: Path | None = None, *, bytecode: bool = True) -> Built:
    """Build dist/code.zip and dist/layer.zip (staged trees in dist/code and dist/layer). Raises PackageError.

    bytecode=False: sources only, as the package was before it shipped bytecode (to measure what that is worth:
    docs/benchmarks.md; never deployed)."""
    wheels = wheels or dist / "wheels"
    modules, external = code_closure()
    names = layer_distributions(external)
    pinned_all = pins()
    unpinned = [n for n in names if n not in pinned_all]
    if unpinned:
        raise PackageError(f"no pin in constraints.txt for {unpinned}: pin them so the shipped versions are tested")
    pinned = {n: pinned_all[n] for n in names}
    built = Built(
        code_zip=dist / "code.zip",
        layer_zip=dist / "layer.zip",
        code_dir=dist / "code",
        layer_dir=dist / "layer",
        modules=modules,
        distributions=pinned,
    )
    stage_code(built.code_dir, modules)
    stage_layer(built.layer_dir, fetch_wheels(pinned, wheels).values())
    if bytecode:
        compile_bytecode(built.code_dir, CODE_ROOT, sourceless=False)
        compile_bytecode(built.layer_dir, LAYER_ROOT, sourceless=True)
    write_zip(built.code_dir, built.code_zip)
    write_zip(built.layer_dir, built.layer_zip)
    built.sizes = {
        "code_zip": built.code_zip.stat().st_size,
        "code_unzipped": unzipped_size(built.code_zip),
        "layer_zip": built.layer_zip.stat().st_size,
        "layer_unzipped": unzipped_size(built.layer_zip),
    }
    return built


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.2f} MB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="output folder (default: dist)")
    parser.add_argument("--wheels", type=Path, default=None, help="wheel cache (default: <dist>/wheels)")
    parser.add_argument(
        "--no-bytecode",
        action="store_true",
        help="sources only, no bytecode: only to measure what the shipped bytecode saves (never deploy it)",
    )
    args = parser.parse_args(argv)
    try:
        built = build(args.dist, args.wheels, bytecode=not args.no_bytecode)
    except PackageError as exc:
        print(f"package: {exc}", file=sys.stderr)
        return 1
    s = built.sizes
    print(
        f"{built.code_zip}: {_mb(s['code_zip'])} zipped, {_mb(s['code_unzipped'])} unzipped "
        f"({len(built.modules)} imagesync modules)"
    )
    print(
        f"{built.layer_zip}: {_mb(s['layer_zip'])} zipped, {_mb(s['layer_unzipped'])} unzipped "
        f"({len(built.distributions)} distributions: "
        + ", ".join(f"{n}=={v}" for n, v in built.distributions.items())
        + ")"
    )
    print(
        f"total unzipped {_mb(s['code_unzipped'] + s['layer_unzipped'])} of {_mb(MAX_UNZIPPED_BYTES)}; "
        f"each zip at most {_mb(MAX_ZIP_BYTES)}"
    )
    problems = check_limits(s)
    for problem in problems:
        print(f"package: over SCF's limits: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
