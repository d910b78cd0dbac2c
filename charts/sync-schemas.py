"""Copies the Kubernetes definitions the charts' values.schema.json refer to into their
`definitions`, from the strict JSON schemas kubernetes-validate ships for the Kubernetes version
the charts are tested against.

Values passed through to a Kubernetes field as they are (security contexts, env, tolerations,
affinity, ...) are `{"$ref": "#/definitions/io.k8s.api.core.v1.SecurityContext"}` in the
schema. Helm and the API server reject a wrongly typed field, but drop an unknown one without a
word: a typo such as `readOnlyRootFilesystm` would silently leave the root filesystem writable.
The strict definitions make Helm refuse it at install time.

    uv run python charts/sync-schemas.py          # rewrite the definitions
    uv run python charts/sync-schemas.py --check  # exit 1 if a schema is out of date
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate

from localkube.versions import KUBERNETES_VERSION

CHARTS = Path(__file__).resolve().parent
# The minor of the control plane the chart tests install into (kubernetes-validate has x.y.0).
SCHEMA_VERSION = ".".join(KUBERNETES_VERSION.removeprefix("v").split(".")[:2]) + ".0"
LOCAL_REF = re.compile(r"^#/definitions/(?P<name>io\.k8s\.[\w.\-]+)$")
UPSTREAM_REF = re.compile(r"^(/api/_definitions\.json)?#/\$defs/(?P<name>[\w.\-]+)$")


def upstream_definitions() -> dict[str, Any]:
    schemas = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    document = json.loads(
        (schemas / f"v{SCHEMA_VERSION}-local-strict" / "_definitions.json").read_text()
    )
    definitions: dict[str, Any] = document["$defs"]
    return definitions


def refs(node: Any, pattern: re.Pattern[str]) -> set[str]:
    """The definition names a schema node refers to, at any depth."""
    if isinstance(node, dict):
        found = {m["name"] for m in [pattern.match(str(node.get("$ref", "")))] if m}
        return found.union(*(refs(value, pattern) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(refs(item, pattern) for item in node))
    return set()


def localised(node: Any) -> Any:
    """An upstream definition with its references pointing into this schema's definitions."""
    if isinstance(node, dict):
        out = {k: localised(v) for k, v in node.items() if k not in ("$schema", "$id")}
        match = UPSTREAM_REF.match(str(node.get("$ref", "")))
        if match:
            out["$ref"] = f"#/definitions/{match['name']}"
        return out
    if isinstance(node, list):
        return [localised(item) for item in node]
    return node


def with_definitions(schema: dict[str, Any], upstream: dict[str, Any]) -> dict[str, Any]:
    """The schema with exactly the Kubernetes definitions it needs, transitively."""
    own = {k: v for k, v in schema.items() if k != "definitions"}
    needed: dict[str, Any] = {}
    pending = refs(own, LOCAL_REF)
    while pending:
        name = pending.pop()
        if name in needed:
            continue
        if name not in upstream:
            raise SystemExit(f"no Kubernetes {SCHEMA_VERSION} definition named {name}")
        needed[name] = localised(upstream[name])
        pending |= refs(needed[name], LOCAL_REF) - needed.keys()
    if needed:
        own["definitions"] = dict(sorted(needed.items()))
    return own


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale schemas")
    args = parser.parse_args()
    upstream = upstream_definitions()
    stale = []
    for path in sorted(CHARTS.glob("*/values.schema.json")):
        text = path.read_text()
        synced = json.dumps(with_definitions(json.loads(text), upstream), indent=2) + "\n"
        if synced != text:
            stale.append(path)
            if not args.check:
                path.write_text(synced)
    for path in stale:
        verb = "is out of date (run charts/sync-schemas.py)" if args.check else "updated"
        print(f"{path.relative_to(CHARTS.parent)} {verb}", file=sys.stderr)
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
