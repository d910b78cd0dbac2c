"""Files a published Go module embeds but does not contain, made here so that it builds
(Alertmanager) or runs (Tilt).

Alertmanager embeds its web UI from ``ui/app/dist`` (``//go:embed app/dist``). Its release
build makes that folder with npm and the Elm compiler before ``go build``; the Go module has no
such folder, so building it as published fails with "pattern app/dist: no matching files found".
Neither Elm (fetched from GitHub by its npm package) nor the UI's packages are to be had here,
so the build compiles a copy of the module with a one-page placeholder in that folder: every
line of Go is Alertmanager's own, and its API (``/api/v2``) is complete; only the browser UI is
missing, which nothing here uses.

Tilt embeds its web UI from ``pkg/assets/build`` (``//go:embed build``), which its release
build fills with yarn; the Go module has only a robots.txt there. That builds, but a Tilt with a
release version then stops at start ("running in prod mode, but JS/CSS files are not
available"), and one without a version looks for a yarn dev server. The stand-in is an
``index.html`` that says so: the API, ``tilt ci``, ``tilt get``, ``tilt logs`` and ``tilt
trigger`` are Tilt's own.

Go refuses an ``-overlay`` of files inside the module cache, so the copy is wired in with a
``replace`` in a scratch copy of the wrapper's go.mod (``go build -modfile``): the committed
wrapper stays exactly what ``generate-go-modules`` writes, and the copy lives in the build's
scratch folder only.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from localkube.errors import BuildError
from localkube.gotool import go_command, go_env
from localkube.versions import ALERTMANAGER, TILT, WrapperModule

Reporter = Callable[[str], None]

# Alertmanager serves "/" from index.html.gz or .br only (it negotiates the encoding).
ALERTMANAGER_UI_FILE = "ui/app/dist/index.html.gz"
ALERTMANAGER_UI_PLACEHOLDER = b"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Alertmanager</title></head>
<body>
<h1>Alertmanager</h1>
<p>This Alertmanager was built by localkube from its Go module, which does not contain the web
UI (the upstream release builds it with npm and Elm). The API is complete:
<a href="api/v2/status">api/v2/status</a>, <a href="api/v2/alerts">api/v2/alerts</a>,
<a href="api/v2/silences">api/v2/silences</a>; amtool talks to it as well.</p>
</body>
</html>
"""

# Tilt serves index.html for every path that is not under /static/.
TILT_UI_FILE = "pkg/assets/build/index.html"
TILT_UI_PLACEHOLDER = b"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Tilt</title></head>
<body>
<h1>Tilt</h1>
<p>This Tilt was built by localkube from its Go module, which does not contain the web UI (the
upstream release builds it with yarn). Everything else is Tilt's own: follow the resources with
<code>tilt get uiresources</code>, their logs with <code>tilt logs -f</code>, press a button with
<code>tilt trigger &lt;resource&gt;</code>, or run <code>tilt ci</code>.</p>
</body>
</html>
"""


def stand_in_files(module: WrapperModule) -> dict[str, bytes]:
    """Path inside the upstream module -> the content the build adds there."""
    if module is ALERTMANAGER:
        # mtime=0: the same bytes on every build, so the stamp and the binary do not change.
        return {ALERTMANAGER_UI_FILE: gzip.compress(ALERTMANAGER_UI_PLACEHOLDER, mtime=0)}
    if module is TILT:
        return {TILT_UI_FILE: TILT_UI_PLACEHOLDER}
    return {}


def digest(module: WrapperModule) -> str:
    """Of the stand-in files, for the build stamp ("" when the module needs none)."""
    files = stand_in_files(module)
    if not files:
        return ""
    hasher = hashlib.sha256()
    for path in sorted(files):
        hasher.update(path.encode() + b"\0" + files[path])
    return hasher.hexdigest()


def go_flags(
    module: WrapperModule, wrapper_dir: Path, scratch: Path, report: Reporter
) -> list[str]:
    """The go flags that build ``module`` with its stand-in files ([] when it needs none).

    Copies the upstream module out of the module cache into ``scratch``, adds the files, and
    writes a go.mod beside it that replaces the upstream with that copy.
    """
    files = stand_in_files(module)
    if not files:
        return []
    report(
        f"{module.upstream} embeds files its Go module lacks ({', '.join(sorted(files))}): "
        "building a copy of it with placeholders there (see localkube/standins.py)"
    )
    source = _module_dir(module, wrapper_dir)
    copy = scratch / "module"
    _writable_copy(source, copy)
    for relative, content in files.items():
        destination = copy / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(content)
    modfile = scratch / "go.mod"
    shutil.copyfile(wrapper_dir / "go.mod", modfile)
    shutil.copyfile(wrapper_dir / "go.sum", scratch / "go.sum")
    _go(["mod", "edit", f"-replace={module.upstream}={copy}", str(modfile)], wrapper_dir)
    return [f"-modfile={modfile}"]


def _module_dir(module: WrapperModule, wrapper_dir: Path) -> Path:
    """The upstream module's folder in Go's module cache (downloaded if missing)."""
    listed = json.loads(_go(["mod", "download", "-json", module.upstream], wrapper_dir))
    if "Dir" not in listed:
        raise BuildError(f"go mod download {module.upstream} failed: {listed.get('Error')}")
    return Path(listed["Dir"])


def _writable_copy(source: Path, destination: Path) -> None:
    """Copy a module-cache folder (read-only files and folders) so it can be added to and
    removed again by a user who is not root."""
    shutil.copytree(source, destination, copy_function=shutil.copyfile)
    for folder, _, _ in os.walk(destination):
        os.chmod(folder, 0o700)


def _go(arguments: list[str], cwd: Path) -> str:
    completed = subprocess.run(
        [go_command(), *arguments],
        cwd=cwd,
        env=go_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if completed.returncode != 0:
        raise BuildError(f"go {' '.join(arguments[:2])} failed: {completed.stderr.strip()}")
    return completed.stdout
