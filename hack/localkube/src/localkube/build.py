"""Build the control-plane binaries from our wrapper modules, cached by version.

A cold build compiles a few thousand Go packages: 15-30 minutes on two cores. Every build
therefore prints what it does and a heartbeat, and the result is cached under
``<cache>/k8s/<version>/`` until the version or the wrapper module's go.sum changes.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from localkube.errors import BuildError
from localkube.gotool import go_command, go_env
from localkube.paths import binary_dir, go_modules_dir
from localkube.versions import ETCD, HELM, KUBERNETES, WrapperModule

HEARTBEAT_SECONDS = 30.0
STAMP_FILE = "build-stamp.json"

Reporter = Callable[[str], None]

# From measurements on 2 cores (idle to heavily shared); said up front so a build never looks
# hung. The CPU time of all five binaries is about 16 minutes.
COLD_BUILD_ESTIMATE = {
    "kubernetes": "7-30 minutes (longer when the machine is busy)",
    "etcd": "1-3 minutes",
    "helm": "2-5 minutes",
}


@dataclass(frozen=True)
class Binary:
    """One executable we build: its file name and the Go package (a ``tool`` of ``module``)."""

    name: str
    module: WrapperModule
    package: str


KUBE_APISERVER = Binary("kube-apiserver", KUBERNETES, "k8s.io/kubernetes/cmd/kube-apiserver")
KUBE_CONTROLLER_MANAGER = Binary(
    "kube-controller-manager", KUBERNETES, "k8s.io/kubernetes/cmd/kube-controller-manager"
)
KUBECTL = Binary("kubectl", KUBERNETES, "k8s.io/kubernetes/cmd/kubectl")
ETCD_SERVER = Binary("etcd", ETCD, "go.etcd.io/etcd/server/v3")
HELM_CLI = Binary("helm", HELM, "helm.sh/helm/v3/cmd/helm")

ALL_BINARIES = (KUBE_APISERVER, KUBE_CONTROLLER_MANAGER, KUBECTL, ETCD_SERVER, HELM_CLI)
CONTROL_PLANE = (ETCD_SERVER, KUBE_APISERVER, KUBE_CONTROLLER_MANAGER, KUBECTL)


def report_to_stderr(message: str) -> None:
    print(f"localkube: {message}", file=sys.stderr, flush=True)


def cache_dir_for(module: WrapperModule) -> Path:
    """``k8s/v1.36.3`` for Kubernetes itself, ``k8s/etcd-v3.6.16`` etc. for the others."""
    if module is KUBERNETES:
        return binary_dir(module.version)
    return binary_dir(f"{module.directory}-{module.version}")


def binary_path(binary: Binary) -> Path:
    return cache_dir_for(binary.module) / "bin" / binary.name


def ensure_binaries(
    binaries: Sequence[Binary] = ALL_BINARIES, report: Reporter = report_to_stderr
) -> dict[str, Path]:
    """Paths of ``binaries``, building the missing or stale ones first (one go build per module)."""
    by_module: dict[str, list[Binary]] = {}
    for binary in binaries:
        by_module.setdefault(binary.module.directory, []).append(binary)
    for group in by_module.values():
        _ensure_module_binaries(group[0].module, group, report)
    return {binary.name: binary_path(binary) for binary in binaries}


def _ensure_module_binaries(
    module: WrapperModule, binaries: list[Binary], report: Reporter
) -> None:
    target = cache_dir_for(module)
    target.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(target / ".lock"):
        stamp = _stamp(module)
        missing = [b for b in binaries if not _is_current(b, stamp)]
        if not missing:
            return
        _build(module, missing, stamp, report)


def _is_current(binary: Binary, stamp: dict[str, str]) -> bool:
    path = binary_path(binary)
    stamp_path = path.parent / f"{binary.name}.{STAMP_FILE}"
    if not (path.is_file() and os.access(path, os.X_OK) and stamp_path.is_file()):
        return False
    recorded: dict[str, str] = json.loads(stamp_path.read_text())
    return recorded == stamp


def _stamp(module: WrapperModule) -> dict[str, str]:
    """What a cached binary was built from: a change of any of these means a rebuild."""
    module_dir = go_modules_dir() / module.directory
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        digest.update((module_dir / name).read_bytes())
    return {
        "version": module.version,
        "wrapper_module_sha256": digest.hexdigest(),
        "ldflags": " ".join(ldflags(module)),
    }


def ldflags(module: WrapperModule) -> list[str]:
    """Strip symbols, and stamp the real version the way each project's own release build does.

    Derived from committed files only, so a cache hit needs no Go toolchain.
    """
    flags = ["-s", "-w"]
    if module is KUBERNETES:
        major, minor, _ = module.version.removeprefix("v").split(".", 2)
        for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
            flags += [
                f"-X {package}.gitVersion={module.version}",
                f"-X {package}.gitMajor={major}",
                f"-X {package}.gitMinor={minor}",
                f"-X {package}.gitTreeState=clean",
            ]
    elif module is HELM:
        # helm's Makefile: the Kubernetes version helm assumes is that of its client-go.
        _, minor, _ = required_version(module, "k8s.io/client-go").removeprefix("v").split(".", 2)
        flags.append(f"-X helm.sh/helm/v3/internal/version.version={module.version}")
        flags.append("-X helm.sh/helm/v3/internal/version.gitTreeState=clean")
        for package in ("helm.sh/helm/v3/pkg/lint/rules", "helm.sh/helm/v3/pkg/chartutil"):
            flags += [f"-X {package}.k8sVersionMajor=1", f"-X {package}.k8sVersionMinor={minor}"]
    return flags


def required_version(module: WrapperModule, dependency: str) -> str:
    """The version of ``dependency`` in the wrapper's go.mod (tidy lists every one it builds)."""
    go_mod = (go_modules_dir() / module.directory / "go.mod").read_text()
    found = re.search(rf"^\s*{re.escape(dependency)} (v\S+)", go_mod, flags=re.MULTILINE)
    if found is None:
        raise BuildError(f"hack/k8s/{module.directory}/go.mod does not require {dependency}")
    return found.group(1)


def _build(
    module: WrapperModule, binaries: list[Binary], stamp: dict[str, str], report: Reporter
) -> None:
    names = ", ".join(b.name for b in binaries)
    target = cache_dir_for(module) / "bin"
    report(
        f"building {names} {module.version} from {module.upstream} (pure Go). A cold build "
        f"(empty Go build cache) takes {COLD_BUILD_ESTIMATE[module.directory]} on 2 cores; "
        f"the result is cached in {target} and reused afterwards."
    )
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="localkube-build-", dir=target.parent) as scratch:
        command = [
            go_command(),
            "build",
            "-v",
            "-trimpath",
            f"-ldflags={stamp['ldflags']}",
            "-o",
            f"{scratch}/",
            *(b.package for b in binaries),
        ]
        packages = [b.package for b in binaries]
        _run_with_heartbeat(command, go_modules_dir() / module.directory, packages, names, report)
        target.mkdir(parents=True, exist_ok=True)
        for binary in binaries:
            built = Path(scratch) / go_build_output_name(binary.package)
            if not built.is_file():
                raise BuildError(f"go build did not produce {built.name} for {binary.package}")
            os.replace(built, target / binary.name)
            (target / f"{binary.name}.{STAMP_FILE}").write_text(json.dumps(stamp, indent=2))
    report(f"built {names} in {_minutes(time.monotonic() - started)}")


def go_build_output_name(package: str) -> str:
    """The file `go build -o dir/` writes: the last path element, skipping a /vN suffix."""
    elements = package.split("/")
    if re.fullmatch(r"v[0-9]+", elements[-1]) and len(elements) > 1:
        return elements[-2]
    return elements[-1]


def _run_with_heartbeat(
    command: list[str], cwd: Path, packages: list[str], what: str, report: Reporter
) -> None:
    """Run go build -v, printing every HEARTBEAT_SECONDS how many packages it has compiled."""
    total = _count_dependencies(cwd, packages)
    of_total = f" of at most {total}" if total else ""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=go_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    tail: deque[str] = deque(maxlen=40)
    compiled = 0
    started = time.monotonic()
    done = threading.Event()

    def heartbeat() -> None:
        while not done.wait(HEARTBEAT_SECONDS):
            elapsed = _minutes(time.monotonic() - started)
            report(f"still building {what}: {compiled}{of_total} packages, {elapsed} elapsed")

    ticker = threading.Thread(target=heartbeat, daemon=True)
    ticker.start()
    try:
        for line in process.stdout:
            compiled += 1
            tail.append(line.rstrip())
        returncode = process.wait()
    finally:
        done.set()
        if process.poll() is None:
            process.kill()
            process.wait()
    if returncode != 0:
        output = "\n".join(tail)
        raise BuildError(
            f"`{' '.join(command[:4])} ...` failed in {cwd}:\n{output}\n"
            "If modules could not be downloaded, the Go module proxy (`go env GOPROXY`) must "
            "be reachable; if the compiler failed, Go 1.26 or newer is needed."
        )


def _count_dependencies(cwd: Path, packages: list[str]) -> int | None:
    """How many packages (standard library included) the build may compile: the progress total.

    None when go cannot list them (the build itself then reports why).
    """
    listed = subprocess.run(
        [go_command(), "list", "-deps", *packages],
        cwd=cwd,
        env=go_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    return len(listed.stdout.split()) if listed.returncode == 0 else None


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


@contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """One build per cache folder at a time, across processes (a test run and `localkube up`)."""
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
