"""Deploy a serverless.yml (Tencent's Serverless Cloud Framework, component ``multi-scf``) onto the emulated SCF.

Read as the component reads it (docs/facts.md#F-SCF-7): ``inputs.src`` (a folder, or ``{src: folder}``),
``inputs.region``/``namespace``/``runtime`` merged into each function, ``inputs.functions`` a MAP keyed by function
(name, handler, runtime, memorySize, timeout, environment [{key, value}], layers [{name, version}], role,
description; ``deadLetterConfig`` {type, name, filterType} is an emulator extension), ``inputs.triggers``
[{type, function, parameters}]. Inputs it does not emulate (vpc, publicAccess, ...) are listed in
``Deployment.ignored``. ``${env:NAME}`` is resolved from the given environment; an unset name is REFUSED
(listing every one), so that a forgotten variable never deploys an empty database URL.

Everything is checked before anything is created, and refused with the code SCF answers (or a ``Component.*``
code for what the component itself refuses). Layout: the code folder copied once per deploy (SCF's /var/user),
each distinct layer list unpacked once, in order, into its own folder (SCF's /opt).
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ApiError
from .model import RUNTIMES, FunctionSpec
from .runtime import ScfRuntime
from .triggers import check_count, check_trigger, new_trigger

RESERVED_ENV_PREFIXES = ("SCF_", "QCLOUD_", "TENCENTCLOUD_")
MAX_ENV_BYTES = 4096
MAX_LAYERS = 5
MAX_UNZIPPED_BYTES = 500 * 1024 * 1024
_ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
#: Inputs the emulated SCF applies; anything else is reported in ``Deployment.ignored`` (never dropped silently).
FUNCTION_INPUTS = {
    "name",
    "handler",
    "runtime",
    "memorySize",
    "timeout",
    "environment",
    "layers",
    "role",
    "description",
    "namespace",
    "deadLetterConfig",
}
INPUTS = {"src", "region", "namespace", "runtime", "functions", "triggers"}
TRIGGER_PARAMETERS = {
    "timer": {"name", "cronExpression", "argument", "enable"},
    "http": {"name", "authType", "netConfig", "enable"},
}


class DeployError(ApiError):
    """A deploy refused: ``code`` is SCF's error code, or ``Component.*`` for the component's own checks."""


@dataclass
class Deployment:
    """What a deploy created: function key -> deployed name, and key -> Function URL."""

    functions: dict[str, str] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)  # inputs read but not emulated (vpc, publicAccess...)
    root: Path | None = None

    def public(self) -> dict:
        return {"functions": dict(self.functions), "urls": dict(self.urls), "ignored": list(self.ignored)}


def resolve_env(value: Any, env: Mapping[str, str], unset: set[str]) -> Any:
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            if m[1] not in env:
                unset.add(m[1])
                return ""
            return env[m[1]]

        return _ENV_REF.sub(sub, value)
    if isinstance(value, list):
        return [resolve_env(v, env, unset) for v in value]
    if isinstance(value, dict):
        return {k: resolve_env(v, env, unset) for k, v in value.items()}
    return value


def _handler_resolves(code_dir: Path, handler: str) -> bool:
    module, _, func = handler.rpartition(".")
    if not module or not func:
        return False
    path = code_dir.joinpath(*module.split("."))
    source = path.with_suffix(".py") if path.with_suffix(".py").is_file() else path / "__init__.py"
    if not source.is_file():
        return False
    tree = ast.parse(source.read_text("utf-8"))
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == func:
            return True
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == func for t in node.targets):
            return True
        if isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == func for a in node.names):
            return True
    return False


def environment(fname: str, raw: Any) -> dict[str, str]:
    if isinstance(raw, dict):  # the single-function component's {variables: {...}} form
        raw = [{"key": k, "value": v} for k, v in (raw.get("variables") or {}).items()]
    if raw is None:
        return {}
    if not isinstance(raw, list) or not all(isinstance(e, dict) and "key" in e for e in raw):
        raise DeployError("InvalidParameterValue.Environment", f"{fname}: environment is a list of {{key, value}}.")
    env = {str(e["key"]): "" if e.get("value") is None else str(e["value"]) for e in raw}
    reserved = sorted(k for k in env if k.upper().startswith(RESERVED_ENV_PREFIXES))
    if reserved:
        raise DeployError(
            "InvalidParameterValue.EnvironmentSystemProtect",
            f"{fname}: {', '.join(reserved)}: the prefixes {', '.join(RESERVED_ENV_PREFIXES)} are "
            "reserved for the platform.",
        )
    size = sum(len(k.encode()) + len(v.encode()) for k, v in env.items())
    if size > MAX_ENV_BYTES:
        raise DeployError(
            "InvalidParameterValue.EnvironmentExceededLimit",
            f"{fname}: the environment holds {size} bytes; SCF allows at most 4 KB.",
        )
    return env


def check_timeout(fname: str, timeout: int) -> int:
    if not 1 <= timeout <= 900:
        raise DeployError("LimitExceeded.Timeout", f"{fname}: timeout {timeout} s is outside 1-900 s.")
    return timeout


def check_memory(fname: str, memory: int) -> int:
    if memory != 64 and not (128 <= memory <= 3072 and memory % 128 == 0):
        raise DeployError(
            "InvalidParameterValue.MemorySize",
            f"{fname}: memorySize {memory} MB is not 64 or a multiple of 128 up to 3072.",
        )
    return memory


def dead_letter_config(fname: str, raw: Any) -> dict | None:
    """{Type: QUEUE|TOPIC, Name, FilterType} from the API's or serverless.yml's (type, name, filterType) keys."""
    if not raw:
        return None
    if not isinstance(raw, dict):
        raise DeployError("InvalidParameterValue.DeadLetterConfig", f"{fname}: DeadLetterConfig is an object.")
    kind = str(raw.get("Type", raw.get("type", ""))).upper()
    name = str(raw.get("Name", raw.get("name", "")))
    if kind not in ("QUEUE", "TOPIC") or not name:
        raise DeployError(
            "InvalidParameterValue.DeadLetterConfig", f"{fname}: DeadLetterConfig needs Type QUEUE or TOPIC and a Name."
        )
    return {"Type": kind, "Name": name, "FilterType": str(raw.get("FilterType", raw.get("filterType", "")))}


def _int(fname: str, raw: Any, default: int, what: str) -> int:
    if raw is None:
        return default
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise DeployError(f"InvalidParameterValue.{what}", f"{fname}: {what} `{raw}` is not a number.") from None


def _trigger_args(fkey: str, type_: str, params: dict) -> tuple[str, str, str, bool]:
    """(name, TriggerDesc, CustomArgument, enabled) as the component passes them to CreateTrigger."""
    name = str(params.get("name") or f"{fkey}-{type_}")
    if type_ == "timer":
        desc, arg = str(params.get("cronExpression", "")), str(params.get("argument") or "")
    else:
        desc = json.dumps({"AuthType": params.get("authType", "NONE"), "NetConfig": params.get("netConfig")})
        arg = ""
    return name, desc, arg, params.get("enable", True) not in (False, "false", "CLOSE")


def _check_triggers(raw: Any, keys: set[str]) -> list[tuple[str, str, dict]]:
    """Every trigger checked as CreateTrigger would check it, before anything is created."""
    if not isinstance(raw, list):
        raise DeployError("Component.InvalidTrigger", "inputs.triggers is a list.")
    out: list[tuple[str, str, dict]] = []
    seen: dict[str, list[tuple[str, str]]] = {}
    for index, trig in enumerate(raw):
        if not isinstance(trig, dict) or not isinstance(trig.get("parameters") or {}, dict):
            raise DeployError("Component.InvalidTrigger", f"triggers[{index}] is not a mapping with parameters.")
        type_, fkey, params = str(trig.get("type", "")), str(trig.get("function", "")), trig.get("parameters") or {}
        name, desc, arg, _ = _trigger_args(fkey, type_, params)
        try:
            check_trigger(type_, name, desc, arg)
            if fkey not in keys:
                raise ApiError("ResourceNotFound.Function", f"no function `{fkey}` in inputs.functions.")
            check_count(seen.setdefault(fkey, []), type_, name)
        except ApiError as exc:
            raise DeployError(exc.code, f"triggers[{index}]: {exc.message}") from None
        seen[fkey].append((type_, name))
        out.append((type_, fkey, params))
    return out


def _layer_zips(fname: str, declared: Any, layers: Mapping[str, Path]) -> list[tuple[str, Path]]:
    if declared is None:
        return []
    if not isinstance(declared, list) or not all(isinstance(x, dict) and x.get("name") for x in declared):
        raise DeployError("InvalidParameterValue.Layers", f"{fname}: layers is a list of {{name, version}}.")
    if len(declared) > MAX_LAYERS:
        raise DeployError("LimitExceeded.Layers", f"{fname}: at most {MAX_LAYERS} layers.")
    out = []
    for layer in declared:
        zip_path = layers.get(str(layer["name"]))
        if zip_path is None or not Path(zip_path).is_file():
            raise DeployError(
                "ResourceNotFound.Layer",
                f"{fname}: layer `{layer['name']}` was not given to the deploy (--layer NAME=ZIP).",
            )
        out.append((f"{layer['name']}:{layer.get('version', '')}", Path(zip_path)))
    return out


def _unzipped_size(path: Path) -> int:
    with zipfile.ZipFile(path) as z:
        return sum(i.file_size for i in z.infolist())


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def deploy(
    runtime: ScfRuntime,
    path: str | Path,
    *,
    env: Mapping[str, str],
    layers: Mapping[str, str | Path] | str | Path | None = None,
    code_dir: str | Path | None = None,
    now: float = 0.0,
    known_region: Any = None,
) -> Deployment:
    """Check and deploy ``path``; raises DeployError before creating anything. ``code_dir`` replaces
    ``inputs.src`` (e.g. a dist/code folder built elsewhere)."""
    path = Path(path)
    doc = yaml.safe_load(path.read_text("utf-8"))
    if not isinstance(doc, dict) or doc.get("component") != "multi-scf":
        raise DeployError("Component.Unsupported", f"{path.name}: the emulator deploys `component: multi-scf`.")
    unset: set[str] = set()
    doc = resolve_env(doc, env, unset)
    if unset:
        raise DeployError(
            "Component.UnsetVariable", f"{path.name}: ${{env:...}} names unset variables: {', '.join(sorted(unset))}."
        )
    inputs = doc.get("inputs") or {}
    functions = inputs.get("functions")
    if not isinstance(functions, dict) or not functions:
        raise DeployError("Component.InvalidFunctions", "inputs.functions is a map keyed by function.")
    # The triggers first: a retired type is the cloud's answer whatever else the file holds.
    triggers = _check_triggers(inputs.get("triggers") or [], {str(k) for k in functions})
    src = inputs.get("src")
    src = src.get("src") if isinstance(src, dict) else src
    code_src = Path(code_dir).resolve() if code_dir is not None else (path.parent / str(src or ".")).resolve()
    if not code_src.is_dir():
        raise DeployError(
            "InvalidParameterValue.Code",
            f"the code folder `{code_src.name}` ({src}) does not exist (run the build first).",
        )
    region = str(inputs.get("region") or "ap-guangzhou")
    if known_region is not None and not known_region(region):
        raise DeployError("UnsupportedRegion", f"The region `{region}` is not supported.")
    layer_map = _layer_map(functions, layers)

    specs: list[tuple[str, FunctionSpec, list[tuple[str, Path]]]] = []
    total_layers: dict[Path, int] = {}
    for key, f in functions.items():
        f = f or {}
        fname = str(f.get("name") or key)
        handler = str(f.get("handler") or "index.main_handler")
        runtime_name = str(f.get("runtime") or inputs.get("runtime") or "")
        if not runtime_name:
            raise DeployError("MissingParameter.Runtime", f"{fname}: no runtime.")
        if runtime_name not in RUNTIMES:
            raise DeployError(
                "InvalidParameterValue.Runtime",
                f"{fname}: runtime `{runtime_name}` is not offered (emulated: {', '.join(RUNTIMES)}).",
            )
        timeout = check_timeout(fname, _int(fname, f.get("timeout"), 3, "Timeout"))
        memory = check_memory(fname, _int(fname, f.get("memorySize"), 128, "MemorySize"))
        if not _handler_resolves(code_src, handler):
            raise DeployError(
                "InvalidParameterValue.Handler",
                f"{fname}: handler `{handler}` does not resolve to a function in {src}.",
            )
        zips = _layer_zips(fname, f.get("layers"), layer_map)
        for _, z in zips:
            total_layers.setdefault(z, _unzipped_size(z))
        dead = dead_letter_config(fname, f.get("deadLetterConfig"))
        spec = FunctionSpec(
            name=fname,
            handler=handler,
            code_dir=code_src,
            layer_dir=code_src,
            runtime=runtime_name,
            namespace=str(f.get("namespace") or inputs.get("namespace") or "default"),
            memory_mb=memory,
            timeout_s=timeout,
            environment=environment(fname, f.get("environment")),
            description=str(f.get("description") or ""),
            role=str(f.get("role") or ""),
            region=region,
            dead_letter=dead,
            layers=[{"LayerName": n.split(":")[0], "LayerVersion": n.split(":")[1]} for n, _ in zips],
        )
        if (spec.namespace, fname) in runtime.functions or any(s.name == fname for _, s, _ in specs):
            raise DeployError("ResourceInUse.FunctionName", f"The function `{fname}` already exists.")
        specs.append((str(key), spec, zips))
    size = _dir_size(code_src) + sum(total_layers.values())
    if size > MAX_UNZIPPED_BYTES:
        raise DeployError(
            "InvalidParameterValue.Code", f"code and layers hold {size} bytes unzipped; SCF allows at most 500 MB."
        )

    ignored = [f"inputs.{k}" for k in inputs if k not in INPUTS]
    ignored += [
        f"inputs.functions.{k}.{x}" for k, f in functions.items() for x in (f or {}) if x not in FUNCTION_INPUTS
    ]
    ignored += [
        f"inputs.triggers.{i}.parameters.{x}"
        for i, (type_, _, params) in enumerate(triggers)
        for x in params
        if x not in TRIGGER_PARAMETERS[type_]
    ]
    root = runtime.work_dir / f"deploy-{len(list(runtime.work_dir.glob('deploy-*'))) + 1}"
    code_dir = root / "code"
    shutil.copytree(code_src, code_dir, ignore=shutil.ignore_patterns("__pycache__"))
    unpacked: dict[tuple[Path, ...], Path] = {}
    result = Deployment(root=root, ignored=ignored)
    for key, spec, zips in specs:
        spec.code_dir = code_dir
        spec.layer_dir = unpacked.get(tuple(z for _, z in zips)) or _unpack(root, len(unpacked), zips)
        unpacked[tuple(z for _, z in zips)] = spec.layer_dir
        runtime.create_function(spec)
        result.functions[key] = spec.name
    for type_, fkey, params in triggers:
        spec = next(s for k, s, _ in specs if k == fkey)
        name, desc, arg, enabled = _trigger_args(fkey, type_, params)
        trigger = new_trigger(
            runtime,
            function=spec.name,
            namespace=spec.namespace,
            name=name,
            type_=type_,
            desc=desc,
            enabled=enabled,
            custom_argument=arg,
            now=now,
        )
        if trigger.url:
            result.urls[fkey] = trigger.url
    return result


def _layer_map(functions: dict, layers: Mapping[str, str | Path] | str | Path | None) -> dict[str, Path]:
    """Layer name -> zip. A bare path serves the one layer name serverless.yml declares."""
    if layers is None:
        return {}
    if isinstance(layers, (str, Path)):
        names = {
            str(x.get("name"))
            for f in functions.values()
            for x in ((f or {}).get("layers") or [])
            if isinstance(x, dict)
        }
        if len(names) > 1:
            raise DeployError(
                "Component.AmbiguousLayer",
                f"serverless.yml declares the layers {', '.join(sorted(names))}: give NAME=ZIP each.",
            )
        return {n: Path(layers) for n in names}
    return {str(k): Path(v) for k, v in layers.items()}


def _unpack(root: Path, index: int, zips: list[tuple[str, Path]]) -> Path:
    target = root / f"opt-{index + 1}"
    target.mkdir(parents=True)
    for _, z in zips:  # in order: a later layer's file replaces an earlier one's
        with zipfile.ZipFile(z) as archive:
            archive.extractall(target)
    return target
