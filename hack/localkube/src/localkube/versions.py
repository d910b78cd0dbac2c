"""The pinned upstream versions. Change one here, then run `localkube generate-go-modules`."""

from __future__ import annotations

from dataclasses import dataclass

KUBERNETES_VERSION = "v1.36.3"
ETCD_VERSION = "v3.6.16"
# The helm release whose client-go has the same minor as KUBERNETES_VERSION, so the Kubernetes
# version helm assumes (its Capabilities.KubeVersion) is the one the control plane runs.
HELM_VERSION = "v3.21.4"
# The cluster DNS of the local node (a Deployment in kube-system, as kubeadm and kind run it).
COREDNS_VERSION = "v1.15.0"

# kube-prometheus-stack, as the local node runs it: the versions below are the images its
# chart names by default, built from their Go modules (a chart bump that changes one of them
# fails hack/localkube/tests/cluster/test_kps_images.py until they match again). The
# operator's version is also that of the CRDs every cluster the fixtures set up gets (crds.py).
KUBE_PROMETHEUS_STACK_CHART_VERSION = "88.5.3"
PROMETHEUS_OPERATOR_VERSION = "v0.93.1"
# Prometheus 3.x is published as the Go module version v0.3xx.y: v0.314.0 is Prometheus 3.14.0.
PROMETHEUS_VERSION = "v0.314.0"
ALERTMANAGER_VERSION = "v0.34.0"
KUBE_STATE_METRICS_VERSION = "v2.20.0"

# Tilt, which runs the Tiltfile against the local node (`make tilt-ci`). Its binary reports the
# version and date stamped at link time, as its release build does; the date is the release
# tag's (what `go list -m -json github.com/tilt-dev/tilt@<version>` gives as Time).
TILT_VERSION = "v0.34.0"
TILT_RELEASE_DATE = "2025-03-11"

PROMETHEUS_OPERATOR_MODULE = "github.com/prometheus-operator/prometheus-operator"


@dataclass(frozen=True)
class WrapperModule:
    """A Go module of ours that requires one upstream module and builds some of its commands.

    ``pin_staging`` replaces every ``v0.0.0`` requirement of the upstream go.mod (Kubernetes'
    staging modules, resolved by a relative ``replace`` upstream) with the published
    ``v0.<minor>.<patch>`` release that matches the upstream version.

    ``carry_replaces`` copies the upstream go.mod's ``replace`` and ``exclude`` directives into
    the wrapper: Go applies them only in the main module, so without this the wrapper would
    build the upstream against other dependency versions than its own release does (and
    ``go install pkg@version`` refuses a module that has them).

    ``tidy_offline`` runs ``go mod tidy`` without module lookups, after downloading the
    upstream's own module graph: tidy also loads the tests of the dependencies' packages, and
    where those import modules the upstream's (pruned) graph does not hold (Tilt: notary's
    tests, through cfssl), an online tidy adds them at their latest versions, which raises shared
    dependencies (grpc, golang.org/x/crypto, ...) far above the upstream's release. Offline,
    those test-only imports stay unresolved and every version is the upstream's; the tools'
    packages are then checked to resolve in full.

    ``cgo`` builds with cgo (gcc) instead of pure Go: Tilt's command line links its Tiltfile
    language server (``tilt lsp``), whose parser is tree-sitter's C code.
    """

    directory: str
    upstream: str
    version: str
    tools: tuple[str, ...]
    pin_staging: bool = False
    carry_replaces: bool = False
    tidy_offline: bool = False
    cgo: bool = False

    @property
    def module_path(self) -> str:
        return f"credit-model-monitoring/hack/k8s/{self.directory}"


KUBERNETES = WrapperModule(
    directory="kubernetes",
    upstream="k8s.io/kubernetes",
    version=KUBERNETES_VERSION,
    tools=(
        "k8s.io/kubernetes/cmd/kube-apiserver",
        "k8s.io/kubernetes/cmd/kube-controller-manager",
        "k8s.io/kubernetes/cmd/kube-proxy",
        "k8s.io/kubernetes/cmd/kube-scheduler",
        "k8s.io/kubernetes/cmd/kubectl",
        "k8s.io/kubernetes/cmd/kubelet",
    ),
    pin_staging=True,
)
ETCD = WrapperModule(
    directory="etcd",
    upstream="go.etcd.io/etcd/server/v3",
    version=ETCD_VERSION,
    tools=("go.etcd.io/etcd/server/v3",),
)
HELM = WrapperModule(
    directory="helm",
    upstream="helm.sh/helm/v3",
    version=HELM_VERSION,
    tools=("helm.sh/helm/v3/cmd/helm",),
)

COREDNS = WrapperModule(
    directory="coredns",
    upstream="github.com/coredns/coredns",
    version=COREDNS_VERSION,
    tools=("github.com/coredns/coredns",),
)

PROMETHEUS_OPERATOR = WrapperModule(
    directory="prometheus-operator",
    upstream=PROMETHEUS_OPERATOR_MODULE,
    version=PROMETHEUS_OPERATOR_VERSION,
    tools=(
        f"{PROMETHEUS_OPERATOR_MODULE}/cmd/operator",
        f"{PROMETHEUS_OPERATOR_MODULE}/cmd/prometheus-config-reloader",
    ),
    carry_replaces=True,
)
PROMETHEUS = WrapperModule(
    directory="prometheus",
    upstream="github.com/prometheus/prometheus",
    version=PROMETHEUS_VERSION,
    tools=("github.com/prometheus/prometheus/cmd/prometheus",),
    carry_replaces=True,
)
ALERTMANAGER = WrapperModule(
    directory="alertmanager",
    upstream="github.com/prometheus/alertmanager",
    version=ALERTMANAGER_VERSION,
    tools=("github.com/prometheus/alertmanager/cmd/alertmanager",),
    carry_replaces=True,
)
KUBE_STATE_METRICS = WrapperModule(
    directory="kube-state-metrics",
    upstream="k8s.io/kube-state-metrics/v2",
    version=KUBE_STATE_METRICS_VERSION,
    tools=("k8s.io/kube-state-metrics/v2",),
    carry_replaces=True,
)

TILT = WrapperModule(
    directory="tilt",
    upstream="github.com/tilt-dev/tilt",
    version=TILT_VERSION,
    tools=("github.com/tilt-dev/tilt/cmd/tilt",),
    carry_replaces=True,
    tidy_offline=True,
    cgo=True,
)

WRAPPER_MODULES: tuple[WrapperModule, ...] = (
    KUBERNETES,
    ETCD,
    HELM,
    COREDNS,
    PROMETHEUS_OPERATOR,
    PROMETHEUS,
    ALERTMANAGER,
    KUBE_STATE_METRICS,
    TILT,
)


def staging_version(kubernetes_version: str) -> str:
    """``v1.36.3`` -> ``v0.36.3``: the published tag of the staging modules for that release."""
    major, _, rest = kubernetes_version.removeprefix("v").partition(".")
    if major != "1" or not rest:
        raise ValueError(f"not a Kubernetes 1.x version: {kubernetes_version!r}")
    return f"v0.{rest}"


def prometheus_release(module_version: str) -> str:
    """``v0.314.0`` -> ``3.14.0``: Prometheus 3 publishes its Go module as v0.<3 * 100 + minor>."""
    major, minor_code, patch = module_version.removeprefix("v").split(".")
    code = int(minor_code)
    if major != "0" or code < 300:
        raise ValueError(f"not a Prometheus 3.x module version: {module_version!r}")
    return f"{code // 100}.{code % 100}.{patch}"
