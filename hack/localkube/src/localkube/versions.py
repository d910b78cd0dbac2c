"""The pinned upstream versions. Change one here, then run `localkube generate-go-modules`."""

from __future__ import annotations

from dataclasses import dataclass

KUBERNETES_VERSION = "v1.36.3"
ETCD_VERSION = "v3.6.16"
# The helm release whose client-go has the same minor as KUBERNETES_VERSION, so the Kubernetes
# version helm assumes (its Capabilities.KubeVersion) is the one the control plane runs.
HELM_VERSION = "v3.21.4"
PROMETHEUS_OPERATOR_VERSION = "v0.85.0"
# The cluster DNS of the local node (a Deployment in kube-system, as kubeadm and kind run it).
COREDNS_VERSION = "v1.15.0"

PROMETHEUS_OPERATOR_MODULE = "github.com/prometheus-operator/prometheus-operator"


@dataclass(frozen=True)
class WrapperModule:
    """A Go module of ours that requires one upstream module and builds some of its commands.

    ``pin_staging`` replaces every ``v0.0.0`` requirement of the upstream go.mod (Kubernetes'
    staging modules, resolved by a relative ``replace`` upstream) with the published
    ``v0.<minor>.<patch>`` release that matches the upstream version.
    """

    directory: str
    upstream: str
    version: str
    tools: tuple[str, ...]
    pin_staging: bool = False

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

WRAPPER_MODULES: tuple[WrapperModule, ...] = (KUBERNETES, ETCD, HELM, COREDNS)


def staging_version(kubernetes_version: str) -> str:
    """``v1.36.3`` -> ``v0.36.3``: the published tag of the staging modules for that release."""
    major, _, rest = kubernetes_version.removeprefix("v").partition(".")
    if major != "1" or not rest:
        raise ValueError(f"not a Kubernetes 1.x version: {kubernetes_version!r}")
    return f"v0.{rest}"
