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
import re
from collections.abc import Callable
from dataclasses import dataclass, field
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


def evaluate(
    helm: Helm,
    context: str = "kind-credit-monitoring",
    settings: dict[str, Any] | None = None,
    stored_db_password: str = "",
) -> TiltRecord:
    """The Tiltfile's record for that kube context, with `settings` as .tilt-settings.json and
    `stored_db_password` as the password in the cluster's database Secret ("": no Secret yet)."""
    record = TiltRecord()
    source = TILTFILE.read_text()
    for match in LOAD.finditer(source):
        module, *symbols = (part.strip().strip('"') for part in match["args"].split(","))
        record.loads[module] = symbols
    # load() needs Tilt's extension loader; the loaded names are recorders defined below.
    source = LOAD.sub("", source)

    def exists(path: str) -> str:
        assert (REPO / path).exists(), f"the Tiltfile names {path}, which does not exist"
        return path

    def add_resource(name: str, **details: Any) -> None:
        assert name not in record.resources, f"resource {name} defined twice"
        record.resources[name] = details

    def read_json(path: str, default: Any = None) -> Any:
        if settings is not None:
            return settings
        return json.loads((REPO / path).read_text()) if (REPO / path).exists() else default

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
            exists(step["sync"][0])
            # Tilt only live-updates files it watches for this image.
            assert any(step["sync"][0].startswith(dep) for dep in deps), step
        wheels, build = command.split(" && ")
        local(wheels)
        file = re.search(r"--file (\S+)", build)
        assert file, build
        dockerfile = (REPO / exists(file[1])).read_text()
        if target := re.search(r"--target (\S+)", build):
            assert re.search(rf"^FROM .* AS {target[1]}$", dockerfile, re.MULTILINE), build
        assert build.endswith("--tag $EXPECTED_REF ."), build
        record.images[ref] = {"command": command, "deps": deps, **options}

    def local(command: str, **_: Any) -> str:
        record.local_commands.append(command)
        if command.startswith("kubectl "):
            # The only cluster read: the database Secret's password, decoded by kubectl.
            assert f"--context {context} " in command, command
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
        for command in (options.get("cmd"), options.get("serve_cmd")):
            if command and command.startswith("python3 "):
                exists(command.split()[1])

    def k8s_resource(workload: str = "", **options: Any) -> None:
        add_resource(options.get("new_name") or workload, kind="k8s", workload=workload, **options)

    # starlark-go converts Python functions, not builtin methods such as list.extend.
    def allow_k8s_contexts(contexts: list[str]) -> None:
        record.allowed_contexts.extend(contexts)

    def encode_yaml(obj: Any) -> str:
        return yaml.safe_dump(obj)

    builtins: dict[str, Callable[..., Any] | Any] = {
        "version_settings": lambda **_: None,
        "read_json": read_json,
        "allow_k8s_contexts": allow_k8s_contexts,
        "k8s_context": lambda: context,
        "fail": fail,
        "helm_repo": lambda name, url, **options: add_resource(
            name, kind="repo", url=url, **options
        ),
        "helm_resource": lambda name, chart, **options: add_resource(
            name, kind="helm", chart=chart, **options
        ),
        "local": local,
        "custom_build": custom_build,
        "custom_build_with_restart": custom_build,
        "sync": lambda src, dest: {"sync": [src, dest]},
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
        "TRIGGER_MODE_MANUAL": 1,
    }
    # Tilt's dialect: top-level if/for and reassignment, sets, recursion.
    configure_starlark(allow_set=True, allow_global_reassign=True, allow_recursion=True)
    Starlark(globals=builtins).exec(source)
    return record


@pytest.fixture(scope="module")
def tilt(helm: Helm) -> TiltRecord:
    return evaluate(helm)


def selector(obj: dict[str, Any]) -> str:
    return f"{obj['metadata']['name']}:{obj['kind'].lower()}"


def test_tiltfile_loads_the_tilt_extensions_it_uses(tilt: TiltRecord) -> None:
    assert tilt.loads == {
        "ext://helm_resource": ["helm_repo", "helm_resource"],
        "ext://restart_process": ["custom_build_with_restart"],
    }


def test_only_kind_contexts_are_allowed(tilt: TiltRecord, helm: Helm) -> None:
    assert tilt.allowed_contexts
    assert all(context.startswith("kind-") for context in tilt.allowed_contexts)
    with pytest.raises(EvalError, match="gke_prod_europe-west1_credit"):
        evaluate(helm, context="gke_prod_europe-west1_credit")


def test_a_kind_context_outside_the_allowed_list_is_refused(helm: Helm) -> None:
    """Tilt itself accepts every local cluster, any kind context among them."""
    with pytest.raises(EvalError) as refused:
        evaluate(helm, context="kind-someother")
    assert "kind-someother" in str(refused.value)
    assert "kind-credit-monitoring" in str(refused.value)


def test_a_remote_context_added_to_the_allowed_list_is_still_refused(helm: Helm) -> None:
    remote = "gke_prod_europe-west1_credit"
    settings = {"allowed_contexts": ["kind-credit-monitoring", remote]}
    with pytest.raises(EvalError) as refused:
        evaluate(helm, context=remote, settings=settings)
    assert remote in str(refused.value)
    assert "kind clusters" in str(refused.value)


def test_kube_prometheus_stack_comes_from_its_helm_repository(tilt: TiltRecord) -> None:
    stack = tilt.resources["kube-prometheus-stack"]
    assert stack["chart"] == "prometheus-community/kube-prometheus-stack"
    assert stack["resource_deps"] == ["prometheus-community"]
    assert tilt.resources["prometheus-community"]["url"].startswith("https://")


def test_three_images_are_built_and_the_charts_use_them(tilt: TiltRecord) -> None:
    assert set(tilt.images) == {"credit-api", "modelmonitor-operator", "modelmonitor-drift-job"}
    containers = [
        c
        for obj in tilt.objects
        if obj["kind"] in WORKLOAD_KINDS
        for c in obj["spec"]["template"]["spec"]["containers"]
    ]
    repositories = {c["image"].rsplit(":", 1)[0] for c in containers}
    assert {"credit-api", "modelmonitor-operator"} <= repositories
    # The drift image reaches the operator through an env var, which Tilt is told to rewrite.
    (json_path,) = tilt.image_json_paths
    assert "MODELMONITOR_DRIFT_IMAGE" in json_path["path"]
    operator = next(
        o
        for o in tilt.objects
        if o["kind"] == json_path["kind"] and o["metadata"]["name"] == json_path["name"]
    )
    env = {
        e["name"]: e["value"] for e in operator["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["MODELMONITOR_DRIFT_IMAGE"].startswith("modelmonitor-drift-job:")


def test_python_code_is_live_updated_with_a_restart(tilt: TiltRecord) -> None:
    commands = {
        "credit-api": ["credit-api", "serve"],
        "modelmonitor-operator": ["modelmonitor", "run"],
    }
    for image, command in commands.items():
        options = tilt.images[image]
        assert "--target dev" in options["command"]
        # The restart wrapper runs the entrypoint followed by the container's args.
        (container,) = [
            c
            for o in tilt.objects
            if o["kind"] == "Deployment"
            for c in o["spec"]["template"]["spec"]["containers"]
            if c["image"].startswith(f"{image}:")
        ]
        assert options["entrypoint"] + container.get("args", []) == command
        assert all(
            step["sync"][1].startswith("/opt/venv/lib/python3.11/site-packages/")
            for step in options["live_update"]
        )


def test_every_build_refreshes_its_wheelhouse_first(tilt: TiltRecord) -> None:
    wheel_steps = {
        image: options["command"].split(" && ")[0] for image, options in tilt.images.items()
    }
    assert wheel_steps == {
        "credit-api": "bash hack/images/build.sh --wheels-only credit-api",
        "modelmonitor-operator": "bash hack/images/build.sh --wheels-only operator",
        "modelmonitor-drift-job": "bash hack/images/build.sh --wheels-only drift",
    }
    for options in tilt.images.values():
        assert "uv.lock" in options["deps"]


def test_every_object_selector_and_dependency_exists(tilt: TiltRecord) -> None:
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
    tilt: TiltRecord,
) -> None:
    """A pod whose Secret belongs to a resource that waits for the pod's own resource would
    never start: on a fresh `tilt up` the PostgreSQL StatefulSet waited for its password Secret,
    which the API's resource (waiting for PostgreSQL) was to apply."""
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


def test_api_grafana_prometheus_and_alertmanager_are_port_forwarded(tilt: TiltRecord) -> None:
    assert tilt.resources["credit-api"]["port_forwards"] == ["8000:8000"]
    forwarded = {
        name: resource["serve_cmd"]
        for name, resource in tilt.resources.items()
        if "port-forward" in resource.get("serve_cmd", "")
    }
    assert set(forwarded) == {"grafana", "prometheus", "alertmanager"}
    assert "3000:80" in forwarded["grafana"]
    assert "9090:9090" in forwarded["prometheus"]
    assert "9093:9093" in forwarded["alertmanager"]


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


def test_every_resource_is_labelled(tilt: TiltRecord) -> None:
    unlabelled = [name for name, r in tilt.resources.items() if not r.get("labels")]
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
    assert "3000:80" in record.resources["grafana"]["serve_cmd"]
    assert "9093:9093" in record.resources["alertmanager"]["serve_cmd"]
    stack = record.resources["kube-prometheus-stack"]
    assert "--version=80.0.0" in stack["flags"]
    assert stack["namespace"] == "monitoring"
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


def test_tilt_down_keeps_the_database_secret_like_helm_uninstall(tilt: TiltRecord) -> None:
    """PostgreSQL's volume outlives `tilt down` and only opens with the stored password."""
    secrets = {o["metadata"]["name"]: o for o in tilt.objects if o["kind"] == "Secret"}
    annotations = secrets["credit-api-db"]["metadata"]["annotations"]
    assert annotations["tilt.dev/down-policy"] == "keep"
    assert annotations["helm.sh/resource-policy"] == "keep"
    kept = [
        selector(o)
        for o in tilt.objects
        if o["metadata"].get("annotations", {}).get("tilt.dev/down-policy") == "keep"
    ]
    assert kept == ["credit-api-db:secret"]


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
