"""`modelmonitor run | render -f FILE | check -f FILE`.

render and check work without a cluster, like `helm template`: put them in CI and GitOps.
Bad input prints `file: field: problem` lines and exits 1, never a traceback.
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelmonitor", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run the operator (settings from MODELMONITOR_* env)")
    render = commands.add_parser("render", help="print the children of the monitors as YAML")
    render.add_argument("-f", "--filename", type=Path, required=True, help="ModelMonitor YAML")
    check = commands.add_parser("check", help="render and validate the monitors and children")
    check.add_argument("-f", "--filename", type=Path, required=True, help="ModelMonitor YAML")
    check.add_argument(
        "--crd",
        type=Path,
        action="append",
        default=[],
        help="a CRD file to validate children of its kind (e.g. prometheus-operator's"
        " monitoring.coreos.com_prometheusrules.yaml); repeatable",
    )
    return parser


def _load(path: Path) -> list[dict[str, Any]]:
    try:
        return list(read_monitors(path.read_text()))
    except OSError as error:
        raise ManifestError(f"cannot read: {error.strerror}") from error


def _parse(documents: list[dict[str, Any]]) -> list[Monitor]:
    return [parse_monitor(document) for document in documents]


def _render(path: Path, settings: Settings) -> int:
    monitors = _parse(_load(path))
    children = [child for monitor in monitors for child in render_children(monitor, settings)]
    sys.stdout.write(dump_manifests(children))
    return 0


def _check(path: Path, crd_files: list[Path], settings: Settings) -> int:
    documents = _load(path)
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
    try:
        if arguments.command == "render":
            return _render(arguments.filename, settings)
        return _check(arguments.filename, arguments.crd, settings)
    except (ManifestError, InvalidSpecError, FileNotFoundError) as error:
        print(f"{arguments.filename}: {error}", file=sys.stderr)
        return EXIT_INVALID


if __name__ == "__main__":
    sys.exit(main())
