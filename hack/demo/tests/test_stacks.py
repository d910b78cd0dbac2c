"""Which stack the end-to-end tests get: pods where the cluster runs them, processes beside a
control plane without nodes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from demo.podstack import Images, PodStack
from demo.stack import LocalStack
from demo.stacks import stack_for

IMAGES = Images(
    credit_api="localhost/credit-api:1",
    operator="localhost/modelmonitor-operator:1",
    drift="localhost/modelmonitor-drift-job:1",
)


@dataclass
class FakeKube:
    runs_pods: bool


def _not_on_this_path() -> NoReturn:
    raise AssertionError("a local-path resource was asked for on a real cluster")


def test_a_control_plane_without_nodes_gets_processes_with_the_fault_switch(tmp_path: Path) -> None:
    stack = stack_for(
        FakeKube(runs_pods=False),  # type: ignore[arg-type]
        tmp_path,
        local_database_url=lambda: "postgresql://e2e@127.0.0.1:5432/e2e",
        local_drift_image=lambda: "localhost/modelmonitor-drift-job:abc",
        images=_not_on_this_path,
    )
    assert isinstance(stack, LocalStack)
    assert stack.database_url == "postgresql://e2e@127.0.0.1:5432/e2e"
    assert (stack.drift_runner, stack.drift_image) == (
        "podman",
        "localhost/modelmonitor-drift-job:abc",
    )
    assert stack.fault_file == tmp_path / "fault"


def test_a_cluster_with_nodes_gets_pods_and_needs_nothing_local(tmp_path: Path) -> None:
    stack = stack_for(
        FakeKube(runs_pods=True),  # type: ignore[arg-type]
        tmp_path,
        local_database_url=_not_on_this_path,
        local_drift_image=_not_on_this_path,
        images=lambda: IMAGES,
    )
    assert isinstance(stack, PodStack)
    assert stack.images == IMAGES
    assert stack.work_dir == tmp_path
