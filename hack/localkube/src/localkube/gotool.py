"""Finding the Go toolchain and the environment every go command runs with."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from localkube.errors import MissingToolError

FALLBACK_GO = "/usr/local/go/bin/go"


def go_command() -> str:
    """The `go` executable, or a MissingToolError that says how to get one."""
    found = shutil.which("go") or (FALLBACK_GO if os.access(FALLBACK_GO, os.X_OK) else None)
    if found is None:
        raise MissingToolError(
            "the Go toolchain (`go`, 1.26 or newer) is needed to build the control plane "
            "binaries and was not found on PATH; install it (https://go.dev/doc/install, or "
            "your distribution's golang package) and make sure the Go module proxy is reachable"
        )
    return found


def go_env() -> dict[str, str]:
    """The environment for go commands: pure Go, no toolchain downloads, no go.work.

    GOCACHE and GOMODCACHE stay the user's defaults so every build on the machine shares them.
    Builds keep go's default -mod=readonly: they never rewrite the committed go.mod/go.sum.
    """
    env = dict(os.environ)
    env["CGO_ENABLED"] = "0"
    env["GOTOOLCHAIN"] = "local"
    env["GOWORK"] = "off"
    return env


@contextmanager
def outside_any_module() -> Iterator[Path]:
    """An empty working folder, so `go list -m mod@version` touches no go.mod of ours."""
    with tempfile.TemporaryDirectory(prefix="localkube-go-") as folder:
        yield Path(folder)
