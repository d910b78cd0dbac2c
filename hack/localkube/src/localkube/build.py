"""Build the control-plane binaries from our wrapper modules, cached by version.

A cold build compiles a few thousand Go packages, minutes to tens of minutes on two cores
(``COLD_BUILD_ESTIMATE``, printed before it starts). Every build therefore prints what it does
and a heartbeat, and the result is cached under
``<cache>/k8s/<version>/`` until the version or the wrapper module's go.sum changes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import signal
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

from localkube import standins
from localkube.errors import BuildError
from localkube.gotool import go_command, go_directive, go_env, go_proxy
from localkube.paths import binary_dir, go_modules_dir
from localkube.versions import (
    ALERTMANAGER,
    COREDNS,
    ETCD,
    HELM,
    KUBE_STATE_METRICS,
    KUBERNETES,
    PROMETHEUS,
    PROMETHEUS_OPERATOR,
    TILT,
    TILT_RELEASE_DATE,
    WrapperModule,
    prometheus_release,
)

HEARTBEAT_SECONDS = 30.0
FAILURE_TAIL_LINES = 25
# What go prints when it cannot reach the module proxy (or is told not to use one).
PROXY_FAILURE = re.compile(
    r"module lookup disabled|dial tcp|no such host|\b403\b|GOPROXY|connection refused"
    r"|i/o timeout|TLS handshake timeout|proxyconnect|server misbehaving|network is unreachable"
    r"|connection reset by peer",
    re.IGNORECASE,
)
# What go prints when it is older than a go.mod's `go` directive (GOTOOLCHAIN=local).
GO_TOO_OLD = re.compile(r"requires go\s*(>=\s*)?[0-9]|\btoolchain\b", re.IGNORECASE)
STAMP_FILE = "build-stamp.json"
# What `go build -v` prints for each package it compiles: its import path alone.
PACKAGE_LINE = re.compile(r"[A-Za-z0-9._~/+-]+")

Reporter = Callable[[str], None]

# From measurements on 2 cores (idle to heavily shared; README "Binaries, versions, cache");
# said up front so a build never looks hung. All five binaries take about 16 minutes of CPU.
COLD_BUILD_ESTIMATE = {
    "kubernetes": "7-30 minutes (up to an hour when the machine is heavily loaded)",
    "etcd": "1-3 minutes",
    "helm": "2-5 minutes",
    "coredns": "2-5 minutes",
    "prometheus-operator": "5-10 minutes",
    "prometheus": "3-8 minutes",
    "alertmanager": "2-5 minutes",
    "kube-state-metrics": "2-5 minutes",
    "tilt": "5-15 minutes",
}
# Who built a Prometheus-family binary (`--version` says "build user"): not the upstream's CI.
BUILD_USER = "localkube"
PROMETHEUS_VERSION_PACKAGE = "github.com/prometheus/common/version"


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
KUBE_SCHEDULER = Binary("kube-scheduler", KUBERNETES, "k8s.io/kubernetes/cmd/kube-scheduler")
KUBELET = Binary("kubelet", KUBERNETES, "k8s.io/kubernetes/cmd/kubelet")
KUBE_PROXY = Binary("kube-proxy", KUBERNETES, "k8s.io/kubernetes/cmd/kube-proxy")
ETCD_SERVER = Binary("etcd", ETCD, "go.etcd.io/etcd/server/v3")
HELM_CLI = Binary("helm", HELM, "helm.sh/helm/v3/cmd/helm")
COREDNS_SERVER = Binary("coredns", COREDNS, "github.com/coredns/coredns")
PROMETHEUS_OPERATOR_BINARY = Binary("operator", PROMETHEUS_OPERATOR, PROMETHEUS_OPERATOR.tools[0])
PROMETHEUS_CONFIG_RELOADER = Binary(
    "prometheus-config-reloader", PROMETHEUS_OPERATOR, PROMETHEUS_OPERATOR.tools[1]
)
PROMETHEUS_SERVER = Binary("prometheus", PROMETHEUS, PROMETHEUS.tools[0])
ALERTMANAGER_SERVER = Binary("alertmanager", ALERTMANAGER, ALERTMANAGER.tools[0])
KUBE_STATE_METRICS_BINARY = Binary(
    "kube-state-metrics", KUBE_STATE_METRICS, "k8s.io/kube-state-metrics/v2"
)
# Runs the Tiltfile against the local node (`make tilt-ci`); no cluster needs it.
TILT_BINARY = Binary("tilt", TILT, TILT.tools[0])

CONTROL_PLANE = (ETCD_SERVER, KUBE_APISERVER, KUBE_CONTROLLER_MANAGER, KUBECTL)
# What a node adds: the scheduler (so Deployments schedule), the kubelet, kube-proxy and the
# cluster DNS (run in a pod, from an image made of this binary).
NODE = (KUBE_SCHEDULER, KUBELET, KUBE_PROXY, COREDNS_SERVER)
ALL_BINARIES = (*CONTROL_PLANE, *NODE, HELM_CLI)
# What kube-prometheus-stack runs on the node (images of their own, see kps.py); not part of
# ALL_BINARIES: a cluster does not need them, and they take as long to build again.
KUBE_PROMETHEUS_STACK = (
    PROMETHEUS_OPERATOR_BINARY,
    PROMETHEUS_CONFIG_RELOADER,
    PROMETHEUS_SERVER,
    ALERTMANAGER_SERVER,
    KUBE_STATE_METRICS_BINARY,
)


def report_to_stderr(message: str) -> None:
    print(f"localkube: {message}", file=sys.stderr, flush=True)


def cache_dir_for(module: WrapperModule) -> Path:
    """``k8s/v1.36.3-<digest>`` for Kubernetes itself, ``k8s/etcd-v3.6.16-<digest>`` etc.

    The digest is the wrapper module's (its go.mod and go.sum): two checkouts whose wrapper
    modules differ (another branch, a version bump) keep their binaries side by side instead of
    rebuilding over each other's.
    """
    digest = wrapper_digest(module)[:12]
    if module is KUBERNETES:
        return binary_dir(f"{module.version}-{digest}")
    return binary_dir(f"{module.directory}-{module.version}-{digest}")


def wrapper_digest(module: WrapperModule) -> str:
    """sha256 of the wrapper module's go.mod and go.sum."""
    module_dir = go_modules_dir() / module.directory
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        digest.update((module_dir / name).read_bytes())
    return digest.hexdigest()


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
    with _exclusive_lock(target / ".lock", report):
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
    stamp = {
        "version": module.version,
        "wrapper_module_sha256": wrapper_digest(module),
        "ldflags": " ".join(ldflags(module)),
    }
    # Only where they apply, so the binaries cached before these existed stay current.
    if build_tags(module):
        stamp["tags"] = ",".join(build_tags(module))
    if module.cgo:
        stamp["cgo"] = "1"
    standin = standins.digest(module)
    if standin:
        stamp["standins_sha256"] = standin
    return stamp


def build_tags(module: WrapperModule) -> tuple[str, ...]:
    """Go build tags: Prometheus with the Kubernetes service discovery only.

    Prometheus registers each service discovery mechanism in a file of its own under
    plugins/ (``//go:build !remove_all_sd || enable_<name>_sd``); file and HTTP discovery are
    always in. The operator writes only ``kubernetes_sd_configs``; the others bring in the
    cloud providers' SDKs (1,534 packages to compile instead of 1,251 for v3.14). No
    ``builtinassets``: the web UI is not built (npm); the API is all the tests use.
    """
    if module is PROMETHEUS:
        return ("remove_all_sd", "enable_kubernetes_sd")
    return ()


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
    elif module is COREDNS:
        # CoreDNS' Makefile stamps the commit only; its version is a constant in the source.
        pass
    elif module is PROMETHEUS_OPERATOR:
        # The operator's default config-reloader image is ...:v<version.Version>.
        flags += prometheus_version_flags(module.version.removeprefix("v"))
    elif module is PROMETHEUS:
        flags += prometheus_version_flags(prometheus_release(module.version))
    elif module is ALERTMANAGER:
        flags += prometheus_version_flags(module.version.removeprefix("v"))
    elif module is KUBE_STATE_METRICS:
        # Its Makefile keeps the v, and names the client-go it was built with in a metric.
        flags += prometheus_version_flags(module.version)
        client_go = required_version(module, "k8s.io/client-go")
        flags.append(f"-X {module.upstream}/pkg/app.ClientGoVersion={client_go}")
    elif module is TILT:
        # What its release build (goreleaser) stamps; a binary without a version calls itself a
        # development build and looks for a JavaScript dev server instead of its embedded UI.
        flags += [
            f"-X main.version={module.version.removeprefix('v')}",
            f"-X main.date={TILT_RELEASE_DATE}",
        ]
    elif module is HELM:
        # helm's Makefile: the Kubernetes version helm assumes is that of its client-go.
        _, minor, _ = required_version(module, "k8s.io/client-go").removeprefix("v").split(".", 2)
        flags.append(f"-X helm.sh/helm/v3/internal/version.version={module.version}")
        flags.append("-X helm.sh/helm/v3/internal/version.gitTreeState=clean")
        for package in ("helm.sh/helm/v3/pkg/lint/rules", "helm.sh/helm/v3/pkg/chartutil"):
            flags += [f"-X {package}.k8sVersionMajor=1", f"-X {package}.k8sVersionMinor={minor}"]
    return flags


def prometheus_version_flags(version: str) -> list[str]:
    """What promu and the Prometheus-family Makefiles stamp, less the build date and revision.

    A date would change the stamp on every call (a rebuild each time); the Go module carries no
    git revision, so `--version` says ``revision: unknown``.
    """
    return [
        f"-X {PROMETHEUS_VERSION_PACKAGE}.Version={version}",
        f"-X {PROMETHEUS_VERSION_PACKAGE}.BuildUser={BUILD_USER}",
    ]


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
        cwd = go_modules_dir() / module.directory
        flags = standins.go_flags(module, cwd, Path(scratch) / "standins", report)
        if build_tags(module):
            flags.append(f"-tags={','.join(build_tags(module))}")
        command = [
            go_command(),
            "build",
            "-v",
            "-trimpath",
            *flags,
            f"-ldflags={stamp['ldflags']}",
            "-o",
            f"{scratch}/",
            *(b.package for b in binaries),
        ]
        packages = [b.package for b in binaries]
        _run_with_heartbeat(command, cwd, packages, names, report, flags=flags, cgo=module.cgo)
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
    command: list[str],
    cwd: Path,
    packages: list[str],
    what: str,
    report: Reporter,
    *,
    flags: list[str],
    cgo: bool = False,
) -> None:
    """Run go build -v, printing every HEARTBEAT_SECONDS how many packages it has compiled."""
    # `go list -deps` downloads every missing module first: minutes without output when cold.
    report(f"resolving and downloading the Go modules of {what} (minutes if none are cached)")
    total = _count_dependencies(cwd, flags, packages, cgo=cgo)
    of_total = f" of at most {total}" if total else ""
    # go goes on compiling the other packages after an error: the names of the packages it
    # compiled (`-v`) would push the error out of a plain tail, so what else it said is kept.
    tail: deque[str] = deque(maxlen=FAILURE_TAIL_LINES)
    said: deque[str] = deque(maxlen=FAILURE_TAIL_LINES)
    compiled = 0
    started = time.monotonic()
    done = threading.Event()

    def heartbeat() -> None:
        while not done.wait(HEARTBEAT_SECONDS):
            elapsed = _minutes(time.monotonic() - started)
            report(f"still building {what}: {compiled}{of_total} packages, {elapsed} elapsed")

    threading.Thread(target=heartbeat, daemon=True).start()
    try:
        with _go_process(command, cwd, stderr=subprocess.STDOUT, cgo=cgo) as process:
            assert process.stdout is not None
            for line in process.stdout:
                compiled += 1
                tail.append(line.rstrip())
                if not PACKAGE_LINE.fullmatch(line.strip()):
                    said.append(line.rstrip())
            returncode = process.wait()
    finally:
        done.set()
    if returncode != 0:
        output = list(said or tail)
        raise BuildError(
            f"`{' '.join(command[:4])} ...` failed in {cwd}: {explain_go_failure(output, cwd)}"
        )


def explain_go_failure(output: list[str], module_dir: Path) -> str:
    """What went wrong, from go's last lines: the module proxy, an old Go, or go's own words."""
    too_old = [line for line in output if GO_TOO_OLD.search(line)]
    if too_old:
        required = go_directive(module_dir / "go.mod")
        return (
            f"this Go is too old: {module_dir.name}'s go.mod (hack/k8s/{module_dir.name}) needs "
            f"Go {required} or newer.\n" + "\n".join(too_old[-3:]) + "\n"
            f"Install Go {required}+ (https://go.dev/doc/install) first on PATH; go does not "
            "fetch a newer toolchain itself here (GOTOOLCHAIN=local)."
        )
    unreachable = [line for line in output if PROXY_FAILURE.search(line)]
    if unreachable:
        proxy = go_proxy()
        return (
            f"modules could not be downloaded through the Go module proxy (GOPROXY={proxy}).\n"
            + "\n".join(unreachable[-3:])
            + f"\nGive this machine network access to {proxy}, or set GOPROXY to a module "
            "proxy it can reach, or pre-fill the module cache (`go env GOMODCACHE`): run "
            f"`go mod download` in hack/k8s/{module_dir.name} where the proxy is reachable and "
            "copy that cache here (or point GOMODCACHE at a copy)."
        )
    return "go said:\n" + "\n".join(output)


def _count_dependencies(
    cwd: Path, flags: list[str], packages: list[str], *, cgo: bool = False
) -> int | None:
    """How many packages (standard library included) the build may compile: the progress total.

    None when go cannot list them (the build itself then reports why).
    """
    command = [go_command(), "list", "-deps", *flags, *packages]
    with _go_process(command, cwd, stderr=subprocess.DEVNULL, cgo=cgo) as process:
        listed, _ = process.communicate()
    return len(listed.split()) if process.returncode == 0 else None


@contextmanager
def _go_process(
    command: list[str], cwd: Path, *, stderr: int, cgo: bool = False
) -> Iterator[subprocess.Popen[str]]:
    """Run go in a process group of its own, and stop the whole group if we stop early.

    go runs the compiler and linker as children: killing go alone (an interrupted build) would
    leave them compiling on for minutes.
    """
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=go_env(cgo=cgo),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        start_new_session=True,
    )
    with process:  # closes the pipe and reaps go on the way out
        try:
            yield process
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # go leads its group (start_new_session)
            raise


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


@contextmanager
def _exclusive_lock(path: Path, report: Reporter) -> Iterator[None]:
    """One build per cache folder at a time, across processes (a test run and `localkube up`).

    Waiting for another process's build can take as long as that build, so it is said once.
    """
    with path.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            report(f"waiting for another build of these binaries to finish (it holds {path})")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
