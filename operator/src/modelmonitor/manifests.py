"""Reading ModelMonitor manifests from YAML and the CRD that validates them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

GROUP = "monitoring.mlops.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "ModelMonitor"
PLURAL = "modelmonitors"
CRD_FILE = "modelmonitors.monitoring.mlops.dev.yaml"


class ManifestError(ValueError):
    """A file that is not a list of ModelMonitor objects."""


def read_monitors(text: str) -> Iterator[dict[str, Any]]:
    """Every ModelMonitor document in a (multi-document) YAML text."""
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as error:
        raise ManifestError(f"not valid YAML: {error}") from error
    for index, document in enumerate(documents):
        if document is None:
            continue
        if not isinstance(document, dict):
            raise ManifestError(f"document {index + 1} is not a mapping")
        if document.get("apiVersion") != API_VERSION or document.get("kind") != KIND:
            found = f"{document.get('apiVersion')}/{document.get('kind')}"
            raise ManifestError(
                f"document {index + 1} is {found}, expected apiVersion {API_VERSION}, kind {KIND}"
            )
        yield document


def crd_path() -> Path:
    """manifests/crds/ in a checkout (the operator image copies it next to the package)."""
    here = Path(__file__).resolve()
    for candidate in (
        here.parent / "crds" / CRD_FILE,
        here.parents[3] / "manifests" / "crds" / CRD_FILE,
    ):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"cannot find {CRD_FILE} (looked in the package and manifests/crds)")


def load_crd(path: Path | None = None) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((path or crd_path()).read_text())
    return loaded


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings (PromQL, dashboard JSON) as `|` blocks, readable in reviews.

    An object the renderers share between children (a labels dict) is written out in full each
    time: `&id001` anchors and `*id001` aliases are valid YAML, but kubectl users read them as
    noise and some tools refuse them.
    """

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _represent_str)


def dump_manifests(documents: list[dict[str, Any]]) -> str:
    """Kubernetes objects as a multi-document YAML text, keys in their rendered order."""
    text: str = yaml.dump_all(documents, Dumper=_BlockDumper, sort_keys=False)
    return text
