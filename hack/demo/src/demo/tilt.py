"""Tilt against the local node: `make tilt` (tilt up) and `make tilt-ci` (tilt ci).

The Tiltfile's local-node mode expects what Tilt cannot make for itself here:

- a cluster holding the machine's node: KUBECONFIG's, when it is the localkube cluster that
  holds it; else one of its own, started the localkube way and stopped (the host put back) when
  Tilt exits. While another cluster holds the node, it says which and starts nothing;
- kube-prometheus-stack's images in the node's containerd (built from their Go modules, cached;
  the chart's pods find them there);
- the pinned tilt (built from its Go module, cached), helm and kubectl first on PATH.

    python -m demo.tilt ci [tilt ci flags]    # exit status: tilt's
    python -m demo.tilt up [tilt up flags]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from demo.cluster import REPO_ROOT
from localkube.cluster import start_cluster, stop_cluster
from localkube.errors import LocalkubeError
from localkube.kps import CHART_ENV, chart_path, kube_prometheus_stack_images
from localkube.kube import Kube, kube_for
from localkube.node.lifecycle import node_holder
from localkube.paths import cache_root
from localkube.state import ClusterState
from localkube.tools import helm_binary, kubectl_binary, tilt_binary

Say = Callable[[str], None]
# Where `make tilt` and `make tilt-ci` start a cluster when KUBECONFIG names none with the node.
OWN_CLUSTER = "tilt-cluster"
# What `tilt ci` may take: image builds from scratch, kube-prometheus-stack's first install.
CI_TIMEOUT = "30m"


def say_to_stderr(message: str) -> None:
    print(f"tilt: {message}", file=sys.stderr, flush=True)


def tilt_environment(
    kubeconfig: Path, say: Say = say_to_stderr, environ: Mapping[str, str] = os.environ
) -> dict[str, str]:
    """Tilt's environment: that cluster, the pinned tilt, helm and kubectl first on PATH (the
    Tiltfile runs `helm` and `kubectl`), kube-prometheus-stack's chart as the demo and the
    tests find it (a copy of the checkout outside the repository has no vendored chart above
    it), no usage reports (nothing leaves the machine)."""
    folders: list[str] = []
    for binary in (tilt_binary(say), helm_binary(say), kubectl_binary(say)):
        if str(binary.parent) not in folders:
            folders.append(str(binary.parent))
    return {
        **environ,
        "PATH": os.pathsep.join([*folders, environ.get("PATH", "")]),
        "KUBECONFIG": str(kubeconfig),
        CHART_ENV: str(chart_path()),
        "TILT_DISABLE_ANALYTICS": "1",
    }


def prepare_node(kube: Kube, say: Say = say_to_stderr) -> None:
    """kube-prometheus-stack's images into the node (the ones it lacks)."""
    imported = kube.import_images(kube_prometheus_stack_images(say))
    if imported:
        say(f"imported {len(imported)} of kube-prometheus-stack's images into the local node")


def holds_the_node(kubeconfig: Path, holder: Path | None) -> bool:
    """Whether the admin kubeconfig is that of the cluster holding the machine's node."""
    return holder is not None and kubeconfig.resolve().parent == holder.resolve()


def holder_running(holder: Path) -> bool:
    """Whether the cluster holding the node still runs (one that stopped without letting go of
    it is cleaned up by the next cluster to start a node)."""
    state = ClusterState.load(holder)
    return state is not None and state.running()


@contextlib.contextmanager
def local_node(say: Say = say_to_stderr) -> Iterator[Kube]:
    """KUBECONFIG's cluster when it holds the machine's node, else a cluster with a node of its
    own (in the cache's tilt-cluster folder), stopped on the way out."""
    holder = node_holder()
    configured = os.environ.get("KUBECONFIG", "")
    if configured and holds_the_node(Path(configured), holder):
        assert holder is not None
        state = ClusterState.load(holder)
        if state is None or not state.running():
            raise LocalkubeError(f"the cluster in {holder} holds the local node but is not running")
        say(f"on the local node of the cluster in {holder} (KUBECONFIG)")
        kube = kube_for(state, kubectl_binary(say))
        try:
            yield kube
        finally:
            kube.close()
        return
    if holder is not None and holder_running(holder):
        raise LocalkubeError(
            f"the machine's one local node belongs to the cluster in {holder}: to run Tilt "
            f"there, set KUBECONFIG={holder}/admin.kubeconfig; or stop it first "
            f"(`localkube --dir {holder} down`)"
        )
    folder = cache_root() / OWN_CLUSTER
    say(f"starting a cluster with the local node in {folder} (stopped when Tilt exits)")
    state = start_cluster(folder, die_with_parent=True, node=True)
    kube = kube_for(state, kubectl_binary(say))
    try:
        kube.install_prometheus_operator_crds()
        yield kube
    finally:
        kube.close()
        say("stopping the cluster and putting the host back")
        stop_cluster(state, keep_data=False)


def tilt_command(subcommand: str, arguments: Sequence[str], tilt: Path) -> list[str]:
    """`tilt ci` gets a timeout unless given one."""
    command = [str(tilt), subcommand, *arguments]
    if subcommand == "ci" and not any(a.startswith("--timeout") for a in arguments):
        command.append(f"--timeout={CI_TIMEOUT}")
    return command


def run_tilt(command: Sequence[str], env: Mapping[str, str], cwd: Path = REPO_ROOT) -> int:
    """Run tilt in the foreground; Ctrl-C and SIGTERM reach it, and we wait for it to stop."""
    process = subprocess.Popen(command, cwd=cwd, env=dict(env))

    def forward(signum: int, _frame: object) -> None:
        process.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        while True:
            try:
                return process.wait()
            except KeyboardInterrupt:
                continue  # tilt got the same SIGINT (one process group): wait for it to stop
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m demo.tilt", description=__doc__.splitlines()[0]
    )
    parser.add_argument("subcommand", choices=["ci", "up"], help="tilt ci or tilt up")
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help="passed on to tilt")
    arguments = parser.parse_args(argv)
    started = time.monotonic()
    try:
        with local_node() as kube:
            prepare_node(kube)
            env = tilt_environment(kube.kubeconfig)
            tilt = tilt_binary()
            version = subprocess.run(
                [str(tilt), "version"], capture_output=True, text=True, check=True, timeout=60
            )
            say_to_stderr(f"tilt {version.stdout.strip()} ({tilt})")
            command = tilt_command(arguments.subcommand, arguments.arguments, tilt)
            returncode = run_tilt(command, env)
    except (LocalkubeError, subprocess.CalledProcessError) as error:
        say_to_stderr(str(error))
        return 1
    elapsed = time.monotonic() - started
    say_to_stderr(f"tilt {arguments.subcommand} exited {returncode} after {elapsed:.0f} s")
    return returncode


if __name__ == "__main__":
    sys.exit(main())
