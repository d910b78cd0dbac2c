"""The Tiltfile, evaluated by Tilt's own Starlark interpreter (go.starlark.net, via starlark-go)
with Tilt's builtins replaced by recorders, so that what it would deploy can be checked here,
where neither Docker nor Tilt runs.

The recorders are real where it matters: `helm()` renders the charts with the pinned helm and the
values files the Tiltfile names, `read_yaml()` reads the real file, and every path, Dockerfile
stage, resource dependency and object selector the Tiltfile mentions must exist.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlark_go import EvalError, Starlark, configure_starlark

from .charttools import REPO, Helm, kubernetes_version

TILTFILE = REPO / "Tiltfile"
LOAD = re.compile(r"^load\((?P<args>[^)]*)\)\s*$", re.MULTILINE)
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}


@dataclass
class TiltRecord:
    """What the Tiltfile asked Tilt to do."""

    loads: dict[str, list[str]] = field(default_factory=dict)
    allowed_contexts: list[str] = field(default_factory=list)
    objects: list[dict[str, Any]] = field(default_factory=list)
    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    local_commands: list[str] = field(default_factory=list)
    image_json_paths: list[dict[str, Any]] = field(default_factory=list)
    printed: list[str] = field(default_factory=list)


# Tilt's modules (os, config), which the Python binding of starlark-go cannot give as values
# with attributes: their functions are renamed in the source (os.path.join -> os_path_join).
MODULE_MEMBER = re.compile(r"\b(os\.path|os|config)\.([a-z_]+)\b")


def evaluate(
    helm: Helm,
    context: str = "kind-credit-monitoring",
    settings: dict[str, Any] | None = None,
    stored_db_password: str = "",
    *,
    node_holder: str = "/var/tmp/localkube-cluster",
    environ: dict[str, str] | None = None,
    subcommand: str = "up",
    main_dir: Path = REPO,
) -> TiltRecord:
    """The Tiltfile's record for that kube context, with `settings` as .tilt-settings.json,
    `stored_db_password` as the password in the cluster's database Secret ("": no Secret yet),
    `node_holder` as what /run/localkube/node says ("": no local node), `environ` as Tilt's
    environment, `subcommand` as `tilt <subcommand>` and the Tiltfile in `main_dir`."""
    record = TiltRecord()
    source = TILTFILE.read_text()
    for match in LOAD.finditer(source):
        module, *symbols = (part.strip().strip('"') for part in match["args"].split(","))
        record.loads[module] = symbols
    # load() needs Tilt's extension loader; the loaded names are recorders defined below.
    source = LOAD.sub("", source)
    source = MODULE_MEMBER.sub(lambda m: f"{m[1].replace('.', '_')}_{m[2]}", source)
    env = environ or {}

    def exists(path: str) -> str:
        assert (REPO / path).exists(), f"the Tiltfile names {path}, which does not exist"
        return path

    def add_resource(name: str, **details: Any) -> None:
        assert name not in record.resources, f"resource {name} defined twice"
        record.resources[name] = details

    def read_json(path: str, default: Any = None) -> Any:
        # Not the checkout's own .tilt-settings.json: a developer's settings are not the test's.
        assert path == ".tilt-settings.json", path
        return settings if settings is not None else default

    def read_file(path: str, default: Any = None) -> Any:
        if path == "/run/localkube/node":
            return node_holder or default
        return (REPO / exists(path)).read_text()

    def fail(message: str) -> None:
        raise RuntimeError(message)

    def helm_template(
        path: str, name: str, namespace: str, values: list[str], set: list[str]
    ) -> str:
        for values_file in values:
            exists(values_file)
        args = ["template", name, str(REPO / exists(path)), "--namespace", namespace]
        # Tilt renders for the cluster it deploys to; here, the version the tests run.
        args += ["--kube-version", kubernetes_version()]
        for values_file in values:
            args += ["--values", str(REPO / values_file)]
        for assignment in set:
            args += ["--set", assignment]
        completed = helm.run(*args)
        assert completed.returncode == 0, completed.stderr
        return completed.stdout

    def k8s_yaml(text: str) -> None:
        record.objects += [doc for doc in yaml.safe_load_all(text) if doc]

    def custom_build(ref: str, command: str, deps: list[str], **options: Any) -> None:
        for path in deps:
            exists(path)
        for step in options.get("live_update", []):
            if "sync" in step:
                exists(step["sync"][0])
                # Tilt only live-updates files it watches for this image.
                assert any(step["sync"][0].startswith(dep) for dep in deps), step
        bash, script, *_ = command.split()
        assert bash == "bash", command
        exists(script)
        record.images[ref] = {"command": command, "deps": deps, **options}

    def local(command: str, **_: Any) -> str:
        record.local_commands.append(command)
        if command.startswith("kubectl "):
            # The only cluster read: the database Secret's password, decoded by kubectl.
            assert command.startswith(f"kubectl --context {context} "), command
            assert "get secret credit-api-db " in command, command
            assert "base64decode" in command, command
            assert "--ignore-not-found" in command, command
            return stored_db_password
        script = command.split()[1] if command.startswith(("bash ", "python3 ")) else None
        if script:
            exists(script)
        return ""

    def local_resource(name: str, **options: Any) -> None:
        add_resource(name, kind="local", **options)
        command = options.get("cmd")
        if isinstance(command, list):
            command = " ".join(command)
        for line in (command, options.get("serve_cmd")):
            if line and line.startswith(("python3 ", "bash ")):
                exists(line.split()[1])

    def k8s_resource(workload: str = "", **options: Any) -> None:
        add_resource(options.get("new_name") or workload, kind="k8s", workload=workload, **options)

    # starlark-go converts Python functions, not builtin methods such as list.extend.
    def allow_k8s_contexts(contexts: list[str]) -> None:
        record.allowed_contexts.extend(contexts)

    def encode_yaml(obj: Any) -> str:
        return yaml.safe_dump(obj)

    def say(*parts: Any) -> None:
        record.printed.append(" ".join(str(part) for part in parts))

    def realpath(path: str) -> str:
        return os.path.realpath(path)

    builtins: dict[str, Callable[..., Any] | Any] = {
        "version_settings": lambda **_: None,
        "docker_prune_settings": lambda **_: None,
        "read_json": read_json,
        "read_file": read_file,
        "print": say,
        "os_getenv": lambda name, default="": env.get(name, default),
        "os_path_realpath": realpath,
        "os_path_dirname": os.path.dirname,
        "os_path_exists": os.path.exists,
        "os_path_join": os.path.join,
        "config_main_dir": str(main_dir),
        "config_tilt_subcommand": subcommand,
        "allow_k8s_contexts": allow_k8s_contexts,
        "k8s_context": lambda: context,
        "fail": fail,
        "local": local,
        "custom_build": custom_build,
        "sync": lambda src, dest: {"sync": [src, dest]},
        "run": lambda command: {"run": command},
        "helm": helm_template,
        "k8s_yaml": k8s_yaml,
        "blob": lambda text: text,
        "read_yaml": lambda path: yaml.safe_load((REPO / exists(path)).read_text()),
        "encode_yaml": encode_yaml,
        "decode_yaml_stream": lambda text: [doc for doc in yaml.safe_load_all(text) if doc],
        "encode_yaml_stream": yaml.safe_dump_all,
        "k8s_image_json_path": lambda path, **options: record.image_json_paths.append(
            {"path": path, **options}
        ),
        "k8s_resource": k8s_resource,
        "local_resource": local_resource,
        "link": lambda url, name="": url,
        "probe": lambda **options: options,
        "http_get_action": lambda **options: options,
        "TRIGGER_MODE_MANUAL": 1,
    }
    # Tilt's dialect: top-level if/for and reassignment, sets, recursion.
    configure_starlark(allow_set=True, allow_global_reassign=True, allow_recursion=True)
    Starlark(globals=builtins).exec(source)
    return record


KPS_VERSION = "88.5.3"
KPS_FILE = f"kube-prometheus-stack-{KPS_VERSION}.tgz"
KPS_REPOSITORY = "https://prometheus-community.github.io/helm-charts"


@pytest.fixture(scope="module")
def tilt(helm: Helm) -> TiltRecord:
    """The Tiltfile on kind (`make dev`)."""
    return evaluate(helm)


@pytest.fixture(scope="module")
def vendored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkout with the vendored chart two folders above it, in shared/vendor/charts."""
    top = tmp_path_factory.mktemp("layout")
    charts = top / "shared" / "vendor" / "charts"
    charts.mkdir(parents=True)
    (charts / KPS_FILE).write_bytes(b"")
    checkout = top / "projects" / "checkout"
    checkout.mkdir(parents=True)
    return checkout


@pytest.fixture(scope="module")
def node_tilt(helm: Helm, vendored: Path) -> TiltRecord:
    """The Tiltfile on the local node (`make tilt`), with the vendored chart above it."""
    return evaluate(helm, context="localkube", main_dir=vendored)


@pytest.fixture(params=["kind", "local-node"], scope="module")
def either(request: pytest.FixtureRequest) -> TiltRecord:
    """What holds on both clusters."""
    record: TiltRecord = request.getfixturevalue("tilt" if request.param == "kind" else "node_tilt")
    return record


def selector(obj: dict[str, Any]) -> str:
    return f"{obj['metadata']['name']}:{obj['kind'].lower()}"


def test_tiltfile_loads_no_extension(tilt: TiltRecord) -> None:
    """Tilt fetches extensions from GitHub when it starts: unreachable offline."""
    assert tilt.loads == {}


def test_the_kube_context_says_which_cluster_and_the_log_says_so(
    tilt: TiltRecord, node_tilt: TiltRecord
) -> None:
    assert tilt.allowed_contexts == ["kind-credit-monitoring", "localkube"]
    (kind_line,) = tilt.printed
    assert kind_line.startswith("credit-monitoring: the kind cluster (kube context kind-")
    (node_line,) = node_tilt.printed
    assert node_line.startswith(
        "credit-monitoring: the local-node cluster (kube context localkube)"
    )
    assert "podman and imported into the node's containerd" in node_line


@pytest.mark.parametrize("context", ["gke_prod_europe-west1_credit", "minikube", "kind-someother"])
def test_other_contexts_are_refused(helm: Helm, context: str) -> None:
    """Tilt itself accepts every local cluster, any kind context among them."""
    with pytest.raises(EvalError) as refused:
        evaluate(helm, context=context)
    assert context in str(refused.value)
    assert "kind-credit-monitoring" in str(refused.value)


def test_a_remote_context_added_to_the_allowed_list_is_still_refused(helm: Helm) -> None:
    remote = "gke_prod_europe-west1_credit"
    settings = {"allowed_contexts": ["kind-credit-monitoring", remote]}
    with pytest.raises(EvalError) as refused:
        evaluate(helm, context=remote, settings=settings)
    assert remote in str(refused.value)
    assert "kind clusters and to the local node" in str(refused.value)


def test_a_cluster_pinned_by_the_settings_refuses_the_other_kind_of_context(
    helm: Helm, vendored: Path
) -> None:
    with pytest.raises(EvalError, match='"cluster" is "kind", but the kube context localkube'):
        evaluate(helm, context="localkube", settings={"cluster": "kind"}, main_dir=vendored)
    with pytest.raises(EvalError, match='it takes "kind", "local-node" or ""'):
        evaluate(helm, settings={"cluster": "minikube"})
    pinned = evaluate(helm, settings={"cluster": "kind"})
    assert '"cluster" pinned by the settings' in pinned.printed[0]


def test_the_local_node_must_run_and_be_kubeconfigs_cluster(helm: Helm, vendored: Path) -> None:
    with pytest.raises(EvalError, match="no local node runs on this machine"):
        evaluate(helm, context="localkube", node_holder="", main_dir=vendored)
    elsewhere = {"KUBECONFIG": "/var/tmp/another-cluster/admin.kubeconfig"}
    with pytest.raises(EvalError, match="a localkube cluster without the local node"):
        evaluate(helm, context="localkube", environ=elsewhere, main_dir=vendored)
    holder = {"KUBECONFIG": "/var/tmp/localkube-cluster/admin.kubeconfig"}
    assert evaluate(helm, context="localkube", environ=holder, main_dir=vendored).images


def kps_command(record: TiltRecord) -> list[str]:
    stack = record.resources["kube-prometheus-stack"]
    command: list[str] = stack["cmd"]
    assert command[:2] == ["bash", "hack/tilt/kube-prometheus-stack.sh"]
    return command[2:]


def test_kube_prometheus_stack_on_kind_comes_from_its_helm_repository_with_grafana(
    tilt: TiltRecord,
) -> None:
    context, release, namespace, chart, version, repository, grafana = kps_command(tilt)
    assert (context, release, namespace) == (
        "kind-credit-monitoring",
        "kube-prometheus-stack",
        "monitoring",
    )
    assert (chart, version, grafana) == ("kube-prometheus-stack", KPS_VERSION, "true")
    assert repository == KPS_REPOSITORY
    assert tilt.resources["kube-prometheus-stack"]["labels"] == ["monitoring"]


def test_kube_prometheus_stack_on_the_local_node_is_the_vendored_chart_without_grafana(
    node_tilt: TiltRecord, vendored: Path
) -> None:
    _, _, _, chart, version, repository, grafana = kps_command(node_tilt)
    assert chart == str(vendored.parents[1] / "shared" / "vendor" / "charts" / KPS_FILE)
    assert (version, repository, grafana) == (KPS_VERSION, "", "false")
    # Said in the UI (a label) and in the Tiltfile's log.
    assert node_tilt.resources["kube-prometheus-stack"]["labels"] == ["monitoring", "grafana-off"]
    assert "Grafana is off: no grafana port-forward" in node_tilt.printed[0]
    assert not {"grafana", "grafana-password"} & set(node_tilt.resources)


def test_the_chart_and_grafana_follow_the_settings(helm: Helm, vendored: Path) -> None:
    settings = {"kube_prometheus_stack": {"chart": "repository", "grafana": True}}
    record = evaluate(helm, context="localkube", settings=settings, main_dir=vendored)
    _, _, _, chart, _, repository, grafana = kps_command(record)
    assert (chart, repository, grafana) == ("kube-prometheus-stack", KPS_REPOSITORY, "true")
    assert "grafana" in record.resources
    own = {"kube_prometheus_stack": {"chart": "/charts/kps", "grafana": False}}
    record = evaluate(helm, settings=own)
    assert kps_command(record)[3:] == ["/charts/kps", KPS_VERSION, "", "false"]
    from_env = {"KUBE_PROMETHEUS_STACK_CHART": "/charts/kps-88.tgz"}
    record = evaluate(helm, context="localkube", environ=from_env, main_dir=vendored)
    assert kps_command(record)[3] == "/charts/kps-88.tgz"


def test_a_missing_vendored_chart_says_how_to_get_one(helm: Helm, vendored: Path) -> None:
    settings = {"kube_prometheus_stack": {"version": "99.0.0"}}
    with pytest.raises(EvalError, match=r"kube-prometheus-stack 99\.0\.0 is not in shared/vendor"):
        evaluate(helm, context="localkube", settings=settings, main_dir=vendored)


IMAGES = {
    # Tilt's image -> hack/images/build.sh's name and the live-updated packages.
    "credit-api": ["credit-api", "credit_api", "prediction_store"],
    "modelmonitor-operator": ["operator", "modelmonitor"],
    "modelmonitor-drift-job": ["drift"],
}


def test_the_images_are_built_with_the_same_script_on_both_clusters(
    tilt: TiltRecord, node_tilt: TiltRecord
) -> None:
    assert set(tilt.images) == set(IMAGES)
    # The local node cannot pull the official PostgreSQL image: build.sh makes one.
    assert set(node_tilt.images) == {*IMAGES, "postgres"}
    for record in (tilt, node_tilt):
        for ref, options in record.images.items():
            assert options["command"].split() == [
                "bash",
                "hack/tilt/image.sh",
                *IMAGES.get(ref, [ref]),
            ]
            assert "uv.lock" in options["deps"] or ref == "postgres"
    for options in tilt.images.values():
        assert options["env"] == {"CONTAINER_ENGINE": "docker", "BASE_IMAGE": "python:3.11-slim"}
        assert options["skips_local_docker"] is False  # Tilt loads it into kind from Docker
    for options in node_tilt.images.values():
        assert options["env"] == {"LOCAL_NODE": "1"}  # imported into the node's containerd
        assert options["skips_local_docker"] is True


def test_the_charts_use_the_images_tilt_builds(either: TiltRecord) -> None:
    containers = [
        c
        for obj in either.objects
        if obj["kind"] in WORKLOAD_KINDS
        for c in pod_spec(obj).get("initContainers", []) + pod_spec(obj)["containers"]
    ]
    repositories = {c["image"].rsplit(":", 1)[0] for c in containers}
    assert repositories == {"credit-api", "modelmonitor-operator", "postgres"}
    assert set(either.images) - {"modelmonitor-drift-job"} <= repositories
    # The drift image reaches the operator through an env var, which Tilt is told to rewrite.
    (json_path,) = either.image_json_paths
    assert "MODELMONITOR_DRIFT_IMAGE" in json_path["path"]
    operator = next(
        o
        for o in either.objects
        if o["kind"] == json_path["kind"] and o["metadata"]["name"] == json_path["name"]
    )
    env = {
        e["name"]: e["value"] for e in operator["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["MODELMONITOR_DRIFT_IMAGE"].startswith("modelmonitor-drift-job:")


def test_python_code_is_live_updated_and_the_process_restarted(either: TiltRecord) -> None:
    restart = (REPO / "hack/tilt/restart-on-sync.sh").read_text()
    commands = {
        # image -> container, the image's entrypoint and the chart's args
        "credit-api": ("api", ["credit-api"], ["serve"]),
        "modelmonitor-operator": ("operator", ["modelmonitor"], ["run"]),
    }
    for image, (name, entrypoint, args) in commands.items():
        steps = either.images[image]["live_update"]
        syncs = [step["sync"] for step in steps[:-1]]
        assert [package for _, package in syncs] == [
            f"/opt/venv/lib/python3.11/site-packages/{p}" for p in IMAGES[image][1:]
        ]
        # After the files, the marker restart-on-sync.sh waits for.
        assert steps[-1] == {"run": "touch /tmp/.restart-after-sync"}
        assert "RESTART_MARKER:-/tmp/.restart-after-sync}" in restart
        (deployment,) = [
            o
            for o in either.objects
            if o["kind"] == "Deployment"
            and any(c["image"].startswith(f"{image}:") for c in pod_spec(o)["containers"])
        ]
        (container,) = [c for c in pod_spec(deployment)["containers"] if c["name"] == name]
        assert container["command"] == ["/bin/sh", "-c", restart, "restart-on-sync", *entrypoint]
        assert container["args"] == args
        # The API's database migration (an init container of the same image) is left alone.
        for init in pod_spec(deployment).get("initContainers", []):
            assert init["command"] != container["command"]


def test_every_object_selector_and_dependency_exists(either: TiltRecord) -> None:
    tilt = either
    rendered = {selector(obj) for obj in tilt.objects}
    workloads = {o["metadata"]["name"] for o in tilt.objects if o["kind"] in WORKLOAD_KINDS}
    for name, resource in tilt.resources.items():
        for wanted in resource.get("objects", []):
            assert wanted in rendered, f"resource {name} names {wanted}, which is not rendered"
        if resource["kind"] == "k8s" and resource["workload"]:
            assert resource["workload"] in workloads, name
        for dependency in resource.get("resource_deps", []):
            known = dependency in tilt.resources or dependency in workloads
            assert known, f"resource {name} depends on unknown {dependency}"


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return dict(spec["template"]["spec"])


def object_key(obj: dict[str, Any]) -> str:
    """Tilt's full object selector, name:kind:namespace, lower-cased."""
    meta = obj["metadata"]
    return f"{meta['name']}:{obj['kind']}:{meta.get('namespace', '')}".lower()


def needed_config(workload: dict[str, Any]) -> set[str]:
    """The Secrets and ConfigMaps (as name:kind:namespace) without which the workload's pods
    cannot start: those referenced by environment variables and volumes, unless optional."""
    pod = pod_spec(workload)
    namespace = workload["metadata"].get("namespace", "")
    needed: set[str] = set()

    def need(kind: str, reference: dict[str, Any] | None, name_key: str = "name") -> None:
        if reference and not reference.get("optional"):
            needed.add(f"{reference[name_key]}:{kind}:{namespace}".lower())

    for container in pod.get("initContainers", []) + pod["containers"]:
        for env in container.get("env", []):
            need("secret", env.get("valueFrom", {}).get("secretKeyRef"))
            need("configmap", env.get("valueFrom", {}).get("configMapKeyRef"))
        for source in container.get("envFrom", []):
            need("secret", source.get("secretRef"))
            need("configmap", source.get("configMapRef"))
    for volume in pod.get("volumes", []):
        need("secret", volume.get("secret"), name_key="secretName")
        need("configmap", volume.get("configMap"))
        for source in volume.get("projected", {}).get("sources", []):
            need("secret", source.get("secret"))
            need("configmap", source.get("configMap"))
    return needed


def resource_of_each_object(tilt: TiltRecord) -> dict[str, str]:
    """The Tilt resource that applies each object, assigned as Tilt does: every workload gets a
    resource named after it (which k8s_resource(workload) configures), other objects go to the
    resource whose `objects=` selects them (name:kind[:namespace]), the rest to
    "uncategorized", which no resource depends on (Tilt moves the Services it can match to the
    workloads they select instead; no pod needs a Service to start)."""
    owner: dict[str, str] = {}
    for obj in tilt.objects:
        if obj["kind"] in WORKLOAD_KINDS:
            assert obj["metadata"]["name"] not in owner.values(), f"two workloads {obj}"
            owner[object_key(obj)] = obj["metadata"]["name"]
    for name, resource in tilt.resources.items():
        for wanted in resource.get("objects", []):
            parts = wanted.lower().split(":")
            for obj in tilt.objects:
                key = object_key(obj)
                if key.split(":")[: len(parts)] == parts:
                    assert key not in owner, f"{key} is in {owner[key]} and in {name}"
                    owner[key] = name
    for obj in tilt.objects:
        owner.setdefault(object_key(obj), "uncategorized")
    return owner


def dependencies(tilt: TiltRecord, name: str) -> set[str]:
    """Every resource that `name` waits for, directly or through others."""
    found: set[str] = set()
    pending = [name]
    while pending:
        for dependency in tilt.resources.get(pending.pop(), {}).get("resource_deps", []):
            if dependency not in found:
                found.add(dependency)
                pending.append(dependency)
    return found


def test_the_secrets_and_config_maps_a_pod_needs_are_applied_before_or_with_it(
    either: TiltRecord,
) -> None:
    """A pod whose Secret belongs to a resource that waits for the pod's own resource would
    never start: on a fresh `tilt up` the PostgreSQL StatefulSet waited for its password Secret,
    which the API's resource (waiting for PostgreSQL) was to apply."""
    tilt = either
    owner = resource_of_each_object(tilt)
    workloads = [o for o in tilt.objects if o["kind"] in WORKLOAD_KINDS]
    assert {"credit-api", "credit-api-postgresql"} <= {o["metadata"]["name"] for o in workloads}
    for workload in workloads:
        resource = owner[object_key(workload)]
        ready = {resource} | dependencies(tilt, resource)
        for needed in needed_config(workload):
            assert needed in owner, f"{resource} needs {needed}, which the Tiltfile never applies"
            assert owner[needed] in ready, (
                f"{resource} needs {needed}, which resource {owner[needed]} applies, "
                f"and {resource} does not wait for it (it waits for {sorted(ready - {resource})})"
            )


def test_the_example_monitor_is_deployed_in_the_api_namespace(tilt: TiltRecord) -> None:
    (monitor,) = [o for o in tilt.objects if o["kind"] == "ModelMonitor"]
    api = next(
        o
        for o in tilt.objects
        if o["kind"] == "Deployment" and o["metadata"]["name"] == "credit-api"
    )
    assert monitor["metadata"]["namespace"] == api["metadata"]["namespace"]
    assert tilt.resources["credit-score-monitor"]["objects"] == ["credit-score:modelmonitor"]


def port_forwards(record: TiltRecord) -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in record.resources.items()
        if "port-forward" in resource.get("serve_cmd", "")
    }


def test_api_grafana_prometheus_and_alertmanager_are_port_forwarded(
    tilt: TiltRecord, node_tilt: TiltRecord
) -> None:
    for record in (tilt, node_tilt):
        assert record.resources["credit-api"]["port_forwards"] == ["8000:8000"]
    forwarded = port_forwards(tilt)
    assert set(forwarded) == {"grafana", "prometheus", "alertmanager"}
    assert set(port_forwards(node_tilt)) == {"prometheus", "alertmanager"}
    expected = {"grafana": ("3000:80", "/api/health"), "prometheus": ("9090:9090", "/-/ready"),
                "alertmanager": ("9093:9093", "/-/ready")}  # fmt: skip
    for name, resource in forwarded.items():
        ports, ready = expected[name]
        assert resource["serve_cmd"].startswith(
            "kubectl --context kind-credit-monitoring -n monitoring "
        )
        assert resource["serve_cmd"].endswith(ports)
        # Ready once the UI answers through the forward, not when kubectl merely started.
        http_get = resource["readiness_probe"]["http_get"]
        assert (http_get["port"], http_get["path"]) == (int(ports.split(":")[0]), ready)
        assert resource["resource_deps"] == ["kube-prometheus-stack"]


def test_grafana_password_is_read_from_the_kube_prometheus_stack_secret(
    tilt: TiltRecord,
) -> None:
    command = tilt.resources["grafana-password"]["cmd"]
    assert "get secret kube-prometheus-stack-grafana" in command
    assert "admin-password" in command


def test_traffic_buttons_send_normal_and_drifted_rows(tilt: TiltRecord) -> None:
    normal, drifted = tilt.resources["traffic"], tilt.resources["drifted-traffic"]
    for button in (normal, drifted):
        assert button["cmd"].startswith("python3 hack/kind/traffic.py ")
        assert button["auto_init"] is False
        assert button["resource_deps"] == ["credit-api"]
    assert "--drift" in drifted["cmd"]
    assert "--drift" not in normal["cmd"]


def test_tilt_ci_sends_traffic_once_by_itself(helm: Helm, vendored: Path) -> None:
    record = evaluate(helm, context="localkube", subcommand="ci", main_dir=vendored)
    assert record.resources["traffic"]["auto_init"] is True
    assert record.resources["drifted-traffic"]["auto_init"] is False


def test_every_resource_is_labelled(either: TiltRecord) -> None:
    unlabelled = [name for name, r in either.resources.items() if not r.get("labels")]
    assert unlabelled == [], unlabelled


def test_settings_file_overrides_the_defaults(helm: Helm) -> None:
    example = json.loads((REPO / "tilt-settings.example.json").read_text())
    example["port_forwards"]["api"] = 18000
    record = evaluate(helm, settings=example)
    assert record.resources["credit-api"]["port_forwards"] == ["18000:8000"]
    assert "--rows 1200" in record.resources["traffic"]["cmd"]


def test_partial_nested_settings_keep_the_other_defaults(helm: Helm) -> None:
    settings = {
        "port_forwards": {"api": 18000},
        "kube_prometheus_stack": {"version": "80.0.0"},
        "traffic": {"drifted_rows": 50},
    }
    record = evaluate(helm, settings=settings)
    assert record.resources["credit-api"]["port_forwards"] == ["18000:8000"]
    assert record.resources["grafana"]["serve_cmd"].endswith("3000:80")
    assert record.resources["alertmanager"]["serve_cmd"].endswith("9093:9093")
    _, release, namespace, _, version, _, _ = kps_command(record)
    assert (release, namespace, version) == ("kube-prometheus-stack", "monitoring", "80.0.0")
    assert "--rows 600" in record.resources["traffic"]["cmd"]
    assert "--rows 50" in record.resources["drifted-traffic"]["cmd"]


def database_secret(record: TiltRecord) -> dict[str, str]:
    (secret,) = [
        o
        for o in record.objects
        if o["kind"] == "Secret" and o["metadata"]["name"] == "credit-api-db"
    ]
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}


def test_the_database_password_already_in_the_cluster_is_kept(helm: Helm) -> None:
    """`helm template` cannot look up the stored password: without it every Tiltfile run would
    apply a new one, which PostgreSQL's data volume (initialised with the first) rejects."""
    stored = "q7ZxAfJ0cLrT2mW9bN4kHs8uYe1dVg6P"
    secret = database_secret(evaluate(helm, stored_db_password=stored))
    assert secret["password"] == stored
    writer = hashlib.sha256(f"writer:{stored}".encode()).hexdigest()
    assert f"credit_writer:{writer}@" in secret["writer-dsn"]


def test_a_stored_password_reaches_the_chart_unparsed_by_helm_set(helm: Helm) -> None:
    stored = r"a,b\c{d}=é.f[0]"
    secret = database_secret(evaluate(helm, stored_db_password=stored))
    assert secret["password"] == stored


def test_without_a_stored_password_the_chart_generates_one(tilt: TiltRecord) -> None:
    password = database_secret(tilt)["password"]
    assert len(password) == 32
    assert password.isalnum()


def test_tilt_down_keeps_the_database_secret_and_the_crd_like_helm_uninstall(
    tilt: TiltRecord,
) -> None:
    """PostgreSQL's volume outlives `tilt down` and only opens with the stored password; the
    ModelMonitor CRD outlives it, as every monitor in the cluster would go with it."""
    secrets = {o["metadata"]["name"]: o for o in tilt.objects if o["kind"] == "Secret"}
    annotations = secrets["credit-api-db"]["metadata"]["annotations"]
    assert annotations["tilt.dev/down-policy"] == "keep"
    assert annotations["helm.sh/resource-policy"] == "keep"
    kept = [
        selector(o)
        for o in tilt.objects
        if o["metadata"].get("annotations", {}).get("tilt.dev/down-policy") == "keep"
    ]
    assert sorted(kept) == [
        "credit-api-db:secret",
        "modelmonitors.monitoring.mlops.dev:customresourcedefinition",
    ]


def test_make_dev_cluster_is_the_context_the_tiltfile_allows(tilt: TiltRecord) -> None:
    """manifests/kind/cluster.yaml names the cluster that hack/kind/dev-up.sh creates and that
    kind exposes as context kind-<name>, the one the Tiltfile accepts."""
    cluster = yaml.safe_load((REPO / "manifests/kind/cluster.yaml").read_text())
    assert cluster["kind"] == "Cluster"
    assert cluster["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert f"kind-{cluster['name']}" in tilt.allowed_contexts
    for script in ("hack/kind/dev-up.sh", "hack/kind/dev-down.sh"):
        text = (REPO / script).read_text()
        assert f'cluster="${{KIND_CLUSTER_NAME:-{cluster["name"]}}}"' in text, script
