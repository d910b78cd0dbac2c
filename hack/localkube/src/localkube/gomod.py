"""Generate our wrapper go.mod files from the published upstream go.mod files.

The Kubernetes module cannot be required as is: its go.mod requires its staging modules
(``k8s.io/api``, ``k8s.io/apiserver``, ...) at ``v0.0.0`` and resolves them by relative
``replace`` directives that only work inside its repository. The wrapper derives that list from
the published go.mod and replaces each with the matching published release, so nothing is
copied by hand and a version bump is one edit in ``versions.py``.

Modules such as prometheus-operator and Prometheus pin some dependencies with ``replace`` and
``exclude`` directives, which Go applies only in the main module: with ``carry_replaces`` the
wrapper carries them over, read from the same published go.mod. A replace by a local path
cannot be carried, except by a nested module of the upstream repository, which is published at
the upstream's own version (prometheus-operator's ``pkg/apis/monitoring`` and ``pkg/client``).
"""

from __future__ import annotations

import json
import posixpath
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from localkube.errors import LocalkubeError
from localkube.gotool import go_command, go_env, outside_any_module
from localkube.paths import go_modules_dir
from localkube.versions import WRAPPER_MODULES, WrapperModule, staging_version

GENERATED_FILES = ("go.mod", "go.sum")


def download_go_mod(module: str, version: str) -> dict[str, Any]:
    """The upstream go.mod as `go mod edit -json` parses it (the Go toolchain's own parser)."""
    with outside_any_module() as scratch:
        listed = _go_json(["list", "-m", "-json", f"{module}@{version}"], cwd=scratch)
        go_mod_path = listed.get("GoMod")
        if not go_mod_path:
            raise LocalkubeError(f"the Go module proxy returned no go.mod for {module}@{version}")
        return _go_json(["mod", "edit", "-json", str(go_mod_path)], cwd=scratch)


def staging_modules(upstream_go_mod: dict[str, Any]) -> list[str]:
    """The modules the upstream go.mod requires at v0.0.0 (Kubernetes' staging modules)."""
    requires = upstream_go_mod.get("Require") or []
    return sorted(r["Path"] for r in requires if r["Version"] == "v0.0.0")


def edit_arguments(spec: WrapperModule, upstream_go_mod: dict[str, Any]) -> list[str]:
    """The `go mod edit` flags that turn an empty go.mod into the wrapper (before tidy)."""
    arguments = [f"-go={upstream_go_mod['Go']}", f"-require={spec.upstream}@{spec.version}"]
    arguments += [f"-godebug={d['Key']}={d['Value']}" for d in upstream_go_mod.get("GoDebug") or []]
    if spec.pin_staging:
        published = staging_version(spec.version)
        arguments += [f"-replace={m}={m}@{published}" for m in staging_modules(upstream_go_mod)]
    if spec.carry_replaces:
        arguments += [
            f"-replace={old}={new}" for old, new in carried_replaces(spec, upstream_go_mod)
        ]
        arguments += [
            f"-exclude={e['Path']}@{e['Version']}" for e in upstream_go_mod.get("Exclude") or []
        ]
    arguments += [f"-tool={tool}" for tool in spec.tools]
    return arguments


def carried_replaces(spec: WrapperModule, upstream_go_mod: dict[str, Any]) -> list[tuple[str, str]]:
    """The upstream's replace directives as ``(old, new)`` arguments of `go mod edit -replace`.

    A local replacement (a path, no version) of a nested module of the upstream repository
    becomes that module's published release at the upstream's version; any other local
    replacement exists only in the upstream's checkout and is refused with a LocalkubeError.
    """
    carried = []
    for replace in upstream_go_mod.get("Replace") or []:
        old, new = replace["Old"], replace["New"]
        old_argument = f"{old['Path']}@{old['Version']}" if old.get("Version") else old["Path"]
        if new.get("Version"):
            carried.append((old_argument, f"{new['Path']}@{new['Version']}"))
        elif old["Path"] == nested_module_path(spec.upstream, new["Path"]):
            carried.append((old_argument, f"{old['Path']}@{spec.version}"))
        else:
            raise LocalkubeError(
                f"{spec.upstream}@{spec.version}'s go.mod replaces {old['Path']} with the local "
                f"path {new['Path']}, which exists only in its own checkout: a wrapper module "
                "cannot carry that replace (only a nested module of the same repository, "
                f"published at {spec.version}, can stand in for one)"
            )
    return carried


def nested_module_path(upstream: str, local_path: str) -> str | None:
    """``./pkg/client`` of ``github.com/x/y`` -> ``github.com/x/y/pkg/client``; None outside it."""
    relative = posixpath.normpath(local_path)
    if relative.startswith(("..", "/")) or relative == ".":
        return None
    return f"{upstream}/{relative}"


def generate(spec: WrapperModule, destination: Path) -> None:
    """Write go.mod and go.sum for ``spec`` into ``destination`` (runs `go mod tidy`)."""
    upstream_go_mod = download_go_mod(spec.upstream, spec.version)
    with tempfile.TemporaryDirectory(prefix=f"wrapper-{spec.directory}-") as scratch:
        work = Path(scratch)
        _run_go(["mod", "init", spec.module_path], cwd=work)
        _run_go(["mod", "edit", *edit_arguments(spec, upstream_go_mod)], cwd=work)
        if spec.tidy_offline:
            _tidy_offline(spec, work)
        else:
            _run_go(["mod", "tidy"], cwd=work)
        destination.mkdir(parents=True, exist_ok=True)
        for name in GENERATED_FILES:
            shutil.copyfile(work / name, destination / name)


def _tidy_offline(spec: WrapperModule, work: Path) -> None:
    """Tidy with the upstream's own module graph only (``WrapperModule.tidy_offline``)."""
    _run_go(["mod", "download"], cwd=work)  # the graph the requirements name, through the proxy
    offline = {"GOPROXY": "off", "GOFLAGS": "-mod=mod"}
    # -e: the test-only imports the upstream's graph lacks stay unresolved instead of failing.
    _run_go(["mod", "tidy", "-e"], cwd=work, env=offline)
    # ...but nothing the tools themselves import may be missing.
    _run_go(["list", "-deps", *spec.tools], cwd=work, env=offline)


def generate_all(root: Path | None = None) -> list[Path]:
    """Regenerate every wrapper module under ``root`` (default: the repository's hack/k8s)."""
    base = root if root is not None else go_modules_dir()
    written = []
    for spec in WRAPPER_MODULES:
        generate(spec, base / spec.directory)
        written.append(base / spec.directory)
    return written


def _run_go(arguments: list[str], cwd: Path | None, env: dict[str, str] | None = None) -> str:
    completed = subprocess.run(
        [go_command("to generate the wrapper modules (hack/k8s/*/go.mod)"), *arguments],
        cwd=cwd,
        env={**go_env(), **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise LocalkubeError(f"go {' '.join(arguments)} failed:\n{completed.stderr.strip()}")
    return completed.stdout


def _go_json(arguments: list[str], cwd: Path | None) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(_run_go(arguments, cwd))
    return parsed
