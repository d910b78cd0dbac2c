"""Finding the Go toolchain and the environment every go command runs with."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from localkube.errors import MissingToolError
from localkube.paths import go_modules_dir
from localkube.versions import KUBERNETES

FALLBACK_GO = "/usr/local/go/bin/go"
BUILD_PURPOSE = "to build the control plane binaries"


def go_command(purpose: str = BUILD_PURPOSE) -> str:
    """The `go` executable, or a MissingToolError that says what it was needed for.

    ``purpose`` completes "the Go toolchain is needed ...": the build is not the only user
    (the CRDs are fetched with `go mod download`), and a person reading the error should know
    which step wanted Go.
    """
    found = shutil.which("go") or (FALLBACK_GO if os.access(FALLBACK_GO, os.X_OK) else None)
    if found is None:
        raise MissingToolError(
            f"the Go toolchain (`go`, {minimum_go()} or newer) is needed {purpose} and was not "
            "found on PATH; install it (https://go.dev/doc/install, or your distribution's "
            "golang package) and make sure the Go module proxy is reachable"
        )
    return found


def go_directive(go_mod: Path) -> str:
    """The Go version a go.mod asks for (its `go` line), e.g. ``1.26.0``."""
    found = re.search(r"^go\s+(\S+)", go_mod.read_text(), flags=re.MULTILINE)
    return found.group(1) if found else "(no `go` directive in go.mod)"


def minimum_go() -> str:
    """The Go the Kubernetes wrapper module needs (the newest of the wrapper modules)."""
    try:
        return go_directive(go_modules_dir() / KUBERNETES.directory / "go.mod")
    except OSError:  # the wrapper modules are not where this install expects them
        return "the version hack/k8s/kubernetes/go.mod names"


def go_proxy() -> str:
    """What `go env GOPROXY` says (the proxy go downloads modules from), or a hint if go cannot."""
    try:
        completed = subprocess.run(
            [go_command(), "env", "GOPROXY"],
            env=go_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (MissingToolError, OSError, subprocess.TimeoutExpired):
        return "unknown (`go env GOPROXY` did not answer)"
    return completed.stdout.strip() or "unknown (`go env GOPROXY` printed nothing)"


def go_env(*, cgo: bool = False) -> dict[str, str]:
    """The environment for go commands: pure Go (unless ``cgo``), no toolchain downloads, no
    go.work.

    GOCACHE and GOMODCACHE stay the user's defaults so every build on the machine shares them.
    Builds keep go's default -mod=readonly: they never rewrite the committed go.mod/go.sum.
    """
    env = dict(os.environ)
    env["CGO_ENABLED"] = "1" if cgo else "0"
    env["GOTOOLCHAIN"] = "local"
    env["GOWORK"] = "off"
    return env


@contextmanager
def outside_any_module() -> Iterator[Path]:
    """An empty working folder, so `go list -m mod@version` touches no go.mod of ours."""
    with tempfile.TemporaryDirectory(prefix="localkube-go-") as folder:
        yield Path(folder)
