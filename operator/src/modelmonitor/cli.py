"""`modelmonitor run | render -f FILE | check -f FILE`.

render and check work without a cluster, like `helm template`: put them in CI and GitOps.
`-f -` reads the monitors from stdin; `-n NAMESPACE` places monitors that name none there, as
kubectl does. Bad input prints `file: field: problem` lines and exits 1, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelmonitor.check import (
    check_children,
    crds_by_kind,
    unchecked_kinds,
    validate_with_crd,
)
from modelmonitor.manifests import ManifestError, dump_manifests, load_crd, read_monitors
from modelmonitor.render import render_children
from modelmonitor.settings import Settings
from modelmonitor.spec import InvalidSpecError, Monitor, parse_monitor

EXIT_INVALID = 1
STDIN = "-"
DEFAULT_NAMESPACE = "default"


def _add_input(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "-f", "--filename", required=True, help="ModelMonitor YAML file, or - for stdin"
    )
    command.add_argument(
        "-n",
        "--namespace",
        help="the namespace of monitors that name none (default: default); a monitor that"
        " names another is an error",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelmonitor", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run the operator (settings from MODELMONITOR_* env)")
    render = commands.add_parser("render", help="print the children of the monitors as YAML")
    _add_input(render)
    check = commands.add_parser("check", help="render and validate the monitors and children")
    _add_input(check)
    check.add_argument(
        "--crd",
        type=Path,
        action="append",
        default=[],
        help="a CRD file to validate children of its kind (e.g. prometheus-operator's"
        " monitoring.coreos.com_prometheusrules.yaml); repeatable",
    )
    return parser


def _load(filename: str, namespace: str | None) -> list[dict[str, Any]]:
    """The monitors of `filename` (or stdin), each with its namespace set."""
    try:
        text = sys.stdin.read() if filename == STDIN else Path(filename).read_text()
    except OSError as error:
        raise ManifestError(f"cannot read: {error.strerror}") from error
    documents = list(read_monitors(text))
    for document in documents:
        metadata = document["metadata"] = document.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise ManifestError("metadata: must be a mapping")
        named = metadata.get("namespace")
        if named and namespace and named != namespace:
            raise ManifestError(
                f"metadata.namespace: {metadata.get('name')} is in namespace {named!r},"
                f" not {namespace!r} as -n says"
            )
        metadata["namespace"] = named or namespace or DEFAULT_NAMESPACE
    return documents


def _parse(documents: list[dict[str, Any]]) -> list[Monitor]:
    return [parse_monitor(document) for document in documents]


def _render(documents: list[dict[str, Any]], settings: Settings) -> int:
    monitors = _parse(documents)
    children = [child for monitor in monitors for child in render_children(monitor, settings)]
    sys.stdout.write(dump_manifests(children))
    return 0


def _check(
    path: str, documents: list[dict[str, Any]], crd_files: list[Path], settings: Settings
) -> int:
    crd = load_crd()
    problems = [problem for document in documents for problem in validate_with_crd(document, crd)]
    if problems:
        for problem in problems:
            print(f"{path}: {problem}", file=sys.stderr)
        return EXIT_INVALID
    crds = crds_by_kind(crd_files)
    for monitor in _parse(documents):
        children = render_children(monitor, settings)
        for kind in unchecked_kinds(children, crds):
            print(f"note: {kind} not checked against a schema (pass its CRD with --crd)")
        for problem in check_children(children, crds):
            problems.append(problem)
            print(f"{path}: {monitor.namespace}/{monitor.name}: {problem}", file=sys.stderr)
    if problems:
        return EXIT_INVALID
    print(f"{path}: {len(documents)} monitor(s) and their children are valid")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    settings = Settings()
    if arguments.command == "run":
        # kopf imports the official Kubernetes client when it is installed (only to recognise
        # its model classes, which this operator never passes): a slow start and memory for
        # nothing (docs/performance.md).
        # A None entry in sys.modules makes that optional import fail fast. Imported here so
        # render and check never load kopf either.
        sys.modules.setdefault("kubernetes", None)  # type: ignore[arg-type]
        from modelmonitor.runner import run  # noqa: PLC0415

        run(settings)
        return 0
    source = "stdin" if arguments.filename == STDIN else arguments.filename
    try:
        documents = _load(arguments.filename, arguments.namespace)
        if arguments.command == "render":
            return _render(documents, settings)
        return _check(source, documents, arguments.crd, settings)
    except (ManifestError, InvalidSpecError, FileNotFoundError) as error:
        print(f"{source}: {error}", file=sys.stderr)
        return EXIT_INVALID


if __name__ == "__main__":
    sys.exit(main())
