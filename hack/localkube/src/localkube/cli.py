"""`localkube`: start and stop a local control plane for people, build the binaries, print paths.

localkube up        start (or find) the control plane and a node; print `export KUBECONFIG=...`
                    (--no-node, or LOCALKUBE_NODE=0: the control plane alone)
localkube down      stop it, from any shell, put the host back, remove its admin kubeconfig
localkube status    is it running, where
localkube build     build (or reuse) every pinned binary: control plane, kubectl, helm
localkube paths     the cached binaries' paths (building the missing ones)
localkube images    build (or reuse) the node's images: pause, CoreDNS, kube-prometheus-stack's
localkube crds      the prometheus-operator CRD files
localkube generate-go-modules   rewrite hack/k8s/*/go.mod and go.sum from versions.py
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from localkube.build import ALL_BINARIES, ensure_binaries, report_to_stderr
from localkube.cluster import start_cluster, stop_cluster
from localkube.crds import prometheus_operator_crd_paths
from localkube.errors import LocalkubeError
from localkube.gomod import generate_all
from localkube.images import coredns_image, pause_image
from localkube.kps import kube_prometheus_stack_images
from localkube.kube import kube_for
from localkube.paths import state_dir
from localkube.state import ClusterState
from localkube.tools import kubectl_binary

NODE_ENV = "LOCALKUBE_NODE"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="localkube", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="the cluster's folder (default: $CREDIT_MONITORING_CACHE/localkube)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up_parser = commands.add_parser(
        "up", help="start the control plane and a node (detached) and install the CRDs"
    )
    up_parser.add_argument(
        "--no-node",
        dest="node",
        action="store_false",
        default=os.environ.get(NODE_ENV, "1").strip().lower() not in {"0", "false", "no"},
        help=f"the control plane alone: no kubelet, no pods (also {NODE_ENV}=0)",
    )
    commands.add_parser("down", help="stop the control plane started by `up`")
    commands.add_parser("status", help="whether the control plane runs, and where")
    commands.add_parser("build", help="build or reuse every pinned binary")
    commands.add_parser("paths", help="print the cached binaries' paths as JSON")
    commands.add_parser(
        "images",
        help="build or reuse the node's images; print each reference and its archive (JSON)",
    )
    commands.add_parser("crds", help="print the prometheus-operator CRD files")
    commands.add_parser("generate-go-modules", help="regenerate hack/k8s/*/go.mod and go.sum")
    arguments = parser.parse_args(argv)
    directory: Path = arguments.dir or state_dir()
    try:
        if arguments.command == "up":
            return up(directory, node=arguments.node)
        return int(_COMMANDS[arguments.command](directory))
    except (LocalkubeError, subprocess.CalledProcessError) as error:
        print(f"localkube: {error}", file=sys.stderr)
        return 1


def up(directory: Path, *, node: bool = True) -> int:
    state = ClusterState.load(directory)
    if state is not None and state.running():
        print(f"localkube: already running at {state.server}", file=sys.stderr)
    else:
        if state is not None:
            stop_cluster(state, keep_data=False)  # a half-dead cluster from before: clear it out
        # A SIGTERM while starting unwinds like Ctrl-C, so the half-started processes stop.
        signal.signal(signal.SIGTERM, _exit_on_signal)
        state = start_cluster(directory, die_with_parent=False, node=node)
        cluster = kube_for(state, kubectl_binary())
        try:
            cluster.install_prometheus_operator_crds()
        except BaseException:
            stop_cluster(state)
            raise
        finally:
            cluster.close()
    # stderr, so `eval "$(localkube up)"` runs the export alone. A system kubectl is often
    # more than one minor version away from the server (outside the supported skew).
    print(f"localkube: the matching kubectl: {kubectl_binary()}", file=sys.stderr)
    print(f"export KUBECONFIG={state.kubeconfig}")
    return 0


def _exit_on_signal(signum: int, _frame: object) -> None:
    sys.exit(128 + signum)


def down(directory: Path) -> int:
    state = ClusterState.load(directory)
    if state is None:
        print("localkube: no control plane is running", file=sys.stderr)
        return 0
    stop_cluster(state, keep_data=False)  # every `up` starts a fresh cluster
    # It names a dead server (and a CA no longer in use): an exported KUBECONFIG would only
    # say "connection refused" from then on.
    state.kubeconfig.unlink(missing_ok=True)
    print(f"localkube: stopped the control plane at {state.server}", file=sys.stderr)
    return 0


def status(directory: Path) -> int:
    state = ClusterState.load(directory)
    if state is None or not state.running():
        print("localkube: not running", file=sys.stderr)
        return 1
    print(json.dumps(state.describe(), indent=2))
    return 0


def build(_: Path) -> int:
    ensure_binaries(ALL_BINARIES)
    return 0


def paths(_: Path) -> int:
    found = ensure_binaries(ALL_BINARIES)
    print(json.dumps({name: str(path) for name, path in found.items()}, indent=2))
    return 0


def images(_: Path) -> int:
    built = [
        pause_image(report_to_stderr),
        coredns_image(report_to_stderr),
        *kube_prometheus_stack_images(report_to_stderr),
    ]
    print(json.dumps({image.reference: str(image.archive) for image in built}, indent=2))
    return 0


def crds(_: Path) -> int:
    for path in prometheus_operator_crd_paths():
        print(path)
    return 0


def generate_go_modules(_: Path) -> int:
    for written in generate_all():
        print(f"localkube: wrote {written}/go.mod and go.sum", file=sys.stderr)
    return 0


_COMMANDS = {
    "down": down,
    "status": status,
    "build": build,
    "paths": paths,
    "images": images,
    "crds": crds,
    "generate-go-modules": generate_go_modules,
}
