"""The prometheus-operator CRDs, from the pinned Go module's example/prometheus-operator-crd/.

Nothing is copied into the repository: `go mod download` fetches (and checks against the
checksum database) the module, and the YAML files are read from the module cache.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from localkube.errors import LocalkubeError, MissingToolError
from localkube.gotool import go_command, go_env, outside_any_module
from localkube.versions import PROMETHEUS_OPERATOR_MODULE, PROMETHEUS_OPERATOR_VERSION

CRD_FOLDER = "example/prometheus-operator-crd"
CRD_PURPOSE = (
    f"to fetch the prometheus-operator CRDs (`go mod download {PROMETHEUS_OPERATOR_MODULE}"
    f"@{PROMETHEUS_OPERATOR_VERSION}`), which every cluster the fixtures set up gets"
)
# The kinds the operator and the charts create; the others in the folder are installed too.
REQUIRED_CRDS = (
    "servicemonitors.monitoring.coreos.com",
    "podmonitors.monitoring.coreos.com",
    "prometheusrules.monitoring.coreos.com",
    "prometheuses.monitoring.coreos.com",
)


def prometheus_operator_crd_paths() -> list[Path]:
    """The CRD YAML files of the pinned prometheus-operator release, sorted by name."""
    module_dir = _download_module()
    paths = sorted((module_dir / CRD_FOLDER).glob("*.yaml"))
    names = {crd_name(path) for path in paths}
    missing = [name for name in REQUIRED_CRDS if name not in names]
    if missing:
        raise LocalkubeError(
            f"{PROMETHEUS_OPERATOR_MODULE}@{PROMETHEUS_OPERATOR_VERSION} has no CRD file for "
            f"{', '.join(missing)} under {CRD_FOLDER}"
        )
    return paths


def crd_name(path: Path) -> str:
    """``<group>_<plural>.yaml`` (the file naming of the folder) -> ``<plural>.<group>``."""
    group, _, plural = path.stem.partition("_")
    return f"{plural}.{group}"


def _download_module() -> Path:
    reference = f"{PROMETHEUS_OPERATOR_MODULE}@{PROMETHEUS_OPERATOR_VERSION}"
    with outside_any_module() as scratch:
        completed = subprocess.run(
            [go_command(CRD_PURPOSE), "mod", "download", "-json", reference],
            cwd=scratch,
            env=go_env(),
            capture_output=True,
            text=True,
            check=False,
        )
    try:
        info = json.loads(completed.stdout)
    except json.JSONDecodeError:
        info = {}
    if completed.returncode != 0 or "Dir" not in info:
        detail = info.get("Error") or completed.stderr.strip()
        raise MissingToolError(
            f"could not download {reference} (the prometheus-operator CRDs) through the Go "
            f"module proxy (GOPROXY): {detail}"
        )
    return Path(info["Dir"])
