"""Run the drift job exactly as a Job's pod would: its command, args and env, Secrets resolved.

There is no kubelet on the local control plane, so something has to play its part: read the
Job the CronJob produced, resolve the container's env (literal values, Secret and field
references) and `$(VAR)` expansions the way the kubelet does, and run that container, either
as a local process or with podman from the drift image.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SecretReader = Callable[[str, str], str]

_VAR_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)|\$\$")


@dataclass(frozen=True)
class ContainerRun:
    """What the kubelet would start for the Job's (single) container."""

    image: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    service_account: str
    namespace: str
    mount_paths: tuple[str, ...] = ()


def container_run_from_job(job: Mapping[str, Any], read_secret: SecretReader) -> ContainerRun:
    namespace = job["metadata"]["namespace"]
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env: dict[str, str] = {}
    for item in container.get("env", []):
        env[item["name"]] = _env_value(item, env, namespace, read_secret)
    argv = [
        _expand(part, env) for part in (*container.get("command", []), *container.get("args", []))
    ]
    return ContainerRun(
        image=container["image"],
        argv=tuple(argv),
        env=env,
        service_account=pod.get("serviceAccountName", "default"),
        namespace=namespace,
        mount_paths=tuple(m["mountPath"] for m in container.get("volumeMounts", [])),
    )


def run_as_process(
    run: ContainerRun,
    kubeconfig: Path,
    *,
    volumes: Mapping[str, Path] | None = None,
    timeout: float = 300.0,
) -> subprocess.CompletedProcess[str]:
    """Run the container's command on this machine, with the ServiceAccount's kubeconfig.

    `volumes` maps the container's mount paths to directories here (what the volume would be);
    arguments under a mapped mount path are rewritten to the directory.
    """
    executable = Path(sys.executable).parent / run.argv[0]
    argv = [
        str(executable) if executable.exists() else run.argv[0],
        *(_host_path(part, volumes or {}) for part in run.argv[1:]),
    ]
    env = {**os.environ, **run.env, "KUBECONFIG": str(kubeconfig)}
    return subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _host_path(argument: str, volumes: Mapping[str, Path]) -> str:
    for mount_path, directory in volumes.items():
        if argument == mount_path or argument.startswith(mount_path.rstrip("/") + "/"):
            directory.mkdir(parents=True, exist_ok=True)
            return str(directory) + argument[len(mount_path.rstrip("/")) :]
    return argument


def _env_value(
    item: Mapping[str, Any], earlier: Mapping[str, str], namespace: str, read_secret: SecretReader
) -> str:
    if "value" in item:
        return _expand(str(item["value"]), earlier)
    source = item.get("valueFrom", {})
    if "secretKeyRef" in source:
        ref = source["secretKeyRef"]
        return read_secret(ref["name"], ref["key"])
    if "fieldRef" in source and source["fieldRef"]["fieldPath"] == "metadata.namespace":
        return namespace
    raise ValueError(f"env {item['name']}: unsupported source {sorted(source)}")


def _expand(text: str, env: Mapping[str, str]) -> str:
    # Kubernetes semantics: $(VAR) expands when VAR is defined, stays as is otherwise; $$ is $.
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _VAR_REFERENCE.sub(replace, text)
