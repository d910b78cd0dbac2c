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
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SecretReader = Callable[[str, str], str]
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

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
    """The container of a Job (the one a CronJob produced)."""
    return container_run(job["spec"]["template"]["spec"], job["metadata"]["namespace"], read_secret)


def container_run(
    pod: Mapping[str, Any], namespace: str, read_secret: SecretReader
) -> ContainerRun:
    """The first container of a pod spec (a Job's, a Deployment's), resolved."""
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
    argv = host_argv(run, volumes or {})
    env = {**os.environ, **run.env, "KUBECONFIG": str(kubeconfig)}
    return subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def host_argv(run: ContainerRun, volumes: Mapping[str, Path]) -> list[str]:
    """The container's command line for this machine: the entry point installed beside this
    interpreter, arguments under a mapped mount path rewritten to its directory."""
    executable = Path(sys.executable).parent / run.argv[0]
    return [
        str(executable) if executable.exists() else run.argv[0],
        *(_host_path(part, volumes) for part in run.argv[1:]),
    ]


def run_with_podman(
    run: ContainerRun,
    *,
    api_server: str,
    token: str,
    ca_pem: bytes,
    volumes: Mapping[str, Path] | None = None,
    timeout: float = 300.0,
) -> subprocess.CompletedProcess[str]:
    """Run the container from its image with podman, as its pod would run on a node.

    Host network (the API server, PostgreSQL are on loopback); the ServiceAccount token and
    the cluster CA mounted where in-cluster configuration looks for them; a read-only root
    with a writable /tmp, as the rendered security context asks.
    """
    host, port = api_server.removeprefix("https://").rsplit(":", 1)
    with tempfile.TemporaryDirectory(prefix="sa-") as secrets_dir:
        account = Path(secrets_dir)
        (account / "token").write_text(token)
        (account / "ca.crt").write_bytes(ca_pem)
        (account / "namespace").write_text(run.namespace)
        account.chmod(0o755)
        for item in account.iterdir():
            item.chmod(0o644)
        options = [
            "--rm",
            "--runtime",
            "runc",
            "--network",
            "host",
            "--read-only",
            "--tmpfs",
            "/tmp",  # noqa: S108 - the container's /tmp, as the pod's emptyDir
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            "-v",
            f"{account}:{SERVICE_ACCOUNT_DIR}:ro",
            "-e",
            f"KUBERNETES_SERVICE_HOST={host}",
            "-e",
            f"KUBERNETES_SERVICE_PORT={port}",
        ]
        for mount_path, directory in (volumes or {}).items():
            directory.mkdir(parents=True, exist_ok=True)
            directory.chmod(0o777)  # the image's non-root user writes there
            options += ["-v", f"{directory}:{mount_path}"]
        for name, value in run.env.items():
            options += ["-e", f"{name}={value}"]
        command = ["podman", "run", *options, "--entrypoint", run.argv[0], run.image, *run.argv[1:]]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def _host_path(argument: str, volumes: Mapping[str, Path]) -> str:
    for mount_path, directory in volumes.items():
        if argument == mount_path or argument.startswith(mount_path.rstrip("/") + "/"):
            directory.mkdir(parents=True, exist_ok=True)
            return str(directory) + argument[len(mount_path.rstrip("/")) :]
    return argument


def _env_value(
    item: Mapping[str, Any], earlier: Mapping[str, str], namespace: str, read_secret: SecretReader
) -> str:
    if "valueFrom" not in item:
        # the API server omits an empty value: `value: ""` comes back as no value at all
        return _expand(str(item.get("value", "")), earlier)
    source = item["valueFrom"]
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
