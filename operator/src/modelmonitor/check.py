"""`modelmonitor check`: validate a ModelMonitor and everything rendered from it, offline.

The input is checked against the CRD's own OpenAPI schema (what the API server would say) and
the spec model; the outputs against the Kubernetes schemas shipped by kubernetes-validate, the
schemas of any CRDs given (e.g. prometheus-operator's PrometheusRule), and `promtool check rules`.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

# The oldest Kubernetes minor we support; its schemas are the strictest for our objects.
KUBERNETES_VERSION = "1.30"


def _path(error: jsonschema.ValidationError) -> str:
    parts = ""
    for part in error.absolute_path:
        parts += f"[{part}]" if isinstance(part, int) else (f".{part}" if parts else str(part))
    return parts or "(root)"


def crd_schema(crd: Mapping[str, Any], version: str | None = None) -> dict[str, Any]:
    for served in crd["spec"]["versions"]:
        if version is None or served["name"] == version:
            schema: dict[str, Any] = served["schema"]["openAPIV3Schema"]
            return schema
    raise KeyError(f"{crd['metadata']['name']} has no version {version}")


def validate_with_crd(document: Mapping[str, Any], crd: Mapping[str, Any]) -> list[str]:
    """Messages (`field: problem`) for each way the document breaks the CRD's schema."""
    version = str(document.get("apiVersion", "")).rpartition("/")[2]
    # Structural schemas use draft-4 keywords (boolean exclusiveMinimum/Maximum).
    validator = jsonschema.Draft4Validator(crd_schema(crd, version))
    return [
        f"{_path(error)}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    ]


def validate_kubernetes(document: Mapping[str, Any]) -> list[str]:
    try:
        kubernetes_validate.validate(dict(document), KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{_path(error)}: {error.message}"]
    return []


def promtool_check_rules(groups: Iterable[Mapping[str, Any]]) -> list[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        return ["promtool not found on PATH (Debian package prometheus)"]
    with tempfile.TemporaryDirectory() as folder:
        rule_file = Path(folder) / "rules.yaml"
        rule_file.write_text(yaml.safe_dump({"groups": list(groups)}))
        result = subprocess.run(
            [promtool, "check", "rules", str(rule_file)],
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        return [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    return []


def check_children(
    children: Iterable[Mapping[str, Any]], crds: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """Problems in the rendered children, each prefixed with the child's kind and name.

    `crds` maps `<group>/<Kind>` to a CRD for the kinds Kubernetes itself does not know.
    """
    problems: list[str] = []
    for child in children:
        kind = child["kind"]
        label = f"{kind}/{child['metadata']['name']}"
        group = str(child["apiVersion"]).rpartition("/")[0]
        crd = crds.get(f"{group}/{kind}")
        if crd is not None:
            found = validate_with_crd(child, crd)
        elif _is_custom(group):
            found = []  # reported by unchecked_kinds: the caller decides if that is an error
        else:
            found = validate_kubernetes(child)
        if kind == "PrometheusRule":
            found += promtool_check_rules(child["spec"]["groups"])
        problems += [f"{label}: {problem}" for problem in found]
    return problems


class _CrdLoader(yaml.SafeLoader):
    """SafeLoader that reads a bare `=` (YAML 1.1's value tag, found in enums) as a string."""


def _value_as_string(loader: _CrdLoader, node: yaml.Node) -> str:
    return loader.construct_yaml_str(node)


_CrdLoader.add_constructor("tag:yaml.org,2002:value", _value_as_string)


def _is_custom(group: str) -> bool:
    return "." in group and not group.endswith(".k8s.io")


def unchecked_kinds(
    children: Iterable[Mapping[str, Any]], crds: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """`<group>/<Kind>` of custom children that no given CRD describes."""
    kinds = {f"{str(c['apiVersion']).rpartition('/')[0]}/{c['kind']}" for c in children}
    return sorted(kind for kind in kinds if _is_custom(kind.split("/")[0]) and kind not in crds)


def crds_by_kind(paths: Iterable[Path]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in paths:
        for document in yaml.load_all(path.read_text(), Loader=_CrdLoader):
            if document and document.get("kind") == "CustomResourceDefinition":
                spec = document["spec"]
                found[f"{spec['group']}/{spec['names']['kind']}"] = document
    return found
