"""The operator's schedule grammar against the API server's own CronJob validation.

Every schedule of cases/schedules.yaml, and a few hundred generated from the pieces people
(and typos) put in cron expressions, go to the local control plane as a dry-run CronJob create:
the operator must accept exactly those Kubernetes accepts (less the ones that can never run),
and the ModelMonitor CRD must let every one of them through to the operator.
"""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localkube.kube import Kube
from modelmonitor.schedule import parse_schedule

from .support import EXAMPLE, REPO, SCHEDULES, load_manifest

pytestmark = pytest.mark.cluster

CRD = REPO / "manifests" / "crds" / "modelmonitors.monitoring.mlops.dev.yaml"

# Pieces of fields: items valid in every field, and the rest: names (valid in two fields, in
# both cases), numbers out of some ranges, and the dialects of other crons.
_COMMON_ITEMS = ("*", "?", "1", "00", "5", "12", "+3", "1-5", "*/15", "3/20", "1-12/7", "*/1")
_OTHER_ITEMS = (
    "0", "7", "23", "31", "59", "60", "-1", "5-1", "*/0", "*/5/2", "1-2-3", "MON", "mon-fri",
    "SUN-SAT", "JAN", "jul-dec", "L", "5L", "15W", "1#2", "H", "", "13", "0-6", "1-7",
)  # fmt: skip
_DESCRIPTORS = (
    "@hourly", "@HOURLY", "@daily", "@weekly", "@monthly", "@yearly", "@annually", "@midnight",
    "@reboot", "@every 1h30m", "@every 1.5h", "@every .5s", "@every 1.h", "@every 5",
    "@every 1d", "@every -5m", "@every 0", "@every +90s", "@every 10us", "@every",
)  # fmt: skip
_SEPARATORS = (" ", " ", " ", "  ", "\t")


def generated_schedules(count: int, seed: int = 25) -> list[str]:
    """Cron-like strings: mostly five fields of one to three items, some four or six, some
    descriptors, some with TZ=."""
    rng = random.Random(seed)
    found: list[str] = []
    while len(found) < count:
        roll = rng.random()
        if roll < 0.1:
            found.append(rng.choice(_DESCRIPTORS))
            continue
        fields = rng.choice((4, 5, 5, 5, 5, 5, 6))
        text = ""
        for index in range(fields):
            pool = _COMMON_ITEMS if rng.random() < 0.85 else _OTHER_ITEMS
            items = ",".join(rng.choice(pool) for _ in range(rng.choice((1, 1, 1, 2, 3))))
            text += (rng.choice(_SEPARATORS) if index else "") + items
        found.append(("TZ=UTC " if roll > 0.97 else "") + text)
    return found


def kubernetes_accepts(batch: client.BatchV1Api, namespace: str, schedule: str) -> bool:
    cronjob = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "schedule-probe"},
        "spec": {
            "schedule": schedule,
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "c", "image": "registry.example/c:1"}],
                        }
                    }
                }
            },
        },
    }
    try:
        batch.create_namespaced_cron_job(namespace, cronjob, dry_run="All")
    except ApiException as error:
        refusal = error
    else:
        return True
    # Refused for its schedule, not for anything else about the probe.
    assert refusal.status == 422, refusal.body
    assert "spec.schedule" in (refusal.body or ""), refusal.body
    return False


def operator_verdict(schedule: str) -> str:
    """accepted, refused, or never-runs (refused although Kubernetes would take it)."""
    try:
        parse_schedule(schedule)
    except ValueError as error:
        return "never-runs" if str(error).startswith("never runs") else "refused"
    return "accepted"


def table() -> list[tuple[str, bool]]:
    """(schedule, whether the table says the operator's verdict is Kubernetes')."""
    accepted = [(case["schedule"], True) for case in SCHEDULES["accepted"]]
    refused = [(case["schedule"], False) for case in SCHEDULES["refused"]]
    return accepted + refused


def test_the_operator_accepts_exactly_the_schedules_kubernetes_accepts(
    kube: Kube, kube_namespace: str
) -> None:
    batch = client.BatchV1Api(kube.api_client)
    schedules = [schedule for schedule, _ in table()] + generated_schedules(400)
    disagreements = []
    verdicts: dict[str, int] = {}
    for schedule in dict.fromkeys(schedules):
        kubernetes = kubernetes_accepts(batch, kube_namespace, schedule)
        ours = operator_verdict(schedule)
        verdicts[ours] = verdicts.get(ours, 0) + 1
        agrees = (ours == "accepted") == kubernetes or (ours == "never-runs" and kubernetes)
        if not agrees:
            disagreements.append((schedule, ours, kubernetes))
    assert disagreements == []
    # The generated set exercises both sides, not only refusals.
    assert verdicts["accepted"] >= 50
    assert verdicts["refused"] >= 100


def test_the_table_marks_never_running_schedules_as_kubernetes_sees_them(
    kube: Kube, kube_namespace: str
) -> None:
    batch = client.BatchV1Api(kube.api_client)
    for case in SCHEDULES["refused"]:
        assert kubernetes_accepts(batch, kube_namespace, case["schedule"]) == bool(
            case.get("never_runs")
        ), case["schedule"]


def test_the_crd_lets_every_accepted_schedule_through(kube: Kube, kube_namespace: str) -> None:
    """The CRD no longer has a pattern of its own: the operator is the one judge, so a
    schedule Kubernetes takes is never refused at the door."""
    kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(CRD))
    base = load_manifest(EXAMPLE)
    documents: list[dict[str, Any]] = []
    for index, case in enumerate(SCHEDULES["accepted"]):
        manifest = copy.deepcopy(base)
        manifest["metadata"] = {"name": f"schedule-{index}", "namespace": kube_namespace}
        manifest["spec"]["drift"]["schedule"] = case["schedule"]
        documents.append(manifest)
    path = Path(kube.kubeconfig).parent / f"{kube_namespace}-schedules.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    kube.kubectl("apply", "--dry-run=server", "-f", str(path))
