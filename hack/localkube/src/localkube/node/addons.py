"""What every cluster has besides its nodes: the cluster DNS and a default StorageClass.

CoreDNS runs as kubeadm and kind run it (a Deployment in kube-system behind the `kube-dns`
Service at the tenth Service address), from the image built from its Go module, as an
unprivileged user on an unprivileged port (the Service maps 53 to it). It answers for the
cluster's names only and forwards nothing: no query leaves the machine.
"""

from __future__ import annotations

from typing import Any

from localkube.addresses import CLUSTER_DNS_IP, CLUSTER_DOMAIN

NAMESPACE = "kube-system"
COREDNS = "coredns"
DNS_PORT = 1053
METRICS_PORT = 9153
HEALTH_PORT = 8080
READY_PORT = 8181
STORAGE_CLASS = "standard"  # the name kind gives its default class too
PROVISIONER = "localkube.local/local-volume"

COREFILE = f"""\
.:{DNS_PORT} {{
    errors
    health :{HEALTH_PORT}
    ready :{READY_PORT}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }}
    prometheus :{METRICS_PORT}
    cache 30
    reload
    loadbalance
}}
"""


def coredns_objects(image: str) -> list[dict[str, Any]]:
    labels = {"k8s-app": "kube-dns"}
    meta = {"name": COREDNS, "namespace": NAMESPACE, "labels": labels}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": f"system:{COREDNS}", "labels": labels},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["list", "watch"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"system:{COREDNS}", "labels": labels},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": f"system:{COREDNS}",
            },
            "subjects": [{"kind": "ServiceAccount", "name": COREDNS, "namespace": NAMESPACE}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta,
            "data": {"Corefile": COREFILE},
        },
        _coredns_deployment(image, meta, labels),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {**meta, "name": "kube-dns"},
            "spec": {
                "selector": labels,
                "clusterIP": CLUSTER_DNS_IP,
                "ports": [
                    {"name": "dns", "port": 53, "targetPort": DNS_PORT, "protocol": "UDP"},
                    {"name": "dns-tcp", "port": 53, "targetPort": DNS_PORT, "protocol": "TCP"},
                    {"name": "metrics", "port": METRICS_PORT, "protocol": "TCP"},
                ],
            },
        },
    ]


def _coredns_deployment(image: str, meta: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": COREDNS,
                    "priorityClassName": "system-cluster-critical",
                    # CoreDNS is the cluster's resolver: it must not ask itself.
                    "dnsPolicy": "Default",
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65532,
                        "runAsGroup": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": COREDNS,
                            "image": image,
                            "imagePullPolicy": "Never",
                            "args": ["-conf", "/etc/coredns/Corefile"],
                            "ports": [
                                {"name": "dns", "containerPort": DNS_PORT, "protocol": "UDP"},
                                {"name": "dns-tcp", "containerPort": DNS_PORT, "protocol": "TCP"},
                                {"name": "metrics", "containerPort": METRICS_PORT},
                            ],
                            "readinessProbe": {
                                "httpGet": {"path": "/ready", "port": READY_PORT},
                                "periodSeconds": 2,
                            },
                            "livenessProbe": {
                                "httpGet": {"path": "/health", "port": HEALTH_PORT},
                                "initialDelaySeconds": 10,
                                "periodSeconds": 10,
                            },
                            "resources": {
                                "requests": {"cpu": "50m", "memory": "64Mi"},
                                "limits": {"memory": "170Mi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns"}],
                        }
                    ],
                    "volumes": [{"name": "config", "configMap": {"name": COREDNS}}],
                },
            },
        },
    }


def storage_class() -> dict[str, Any]:
    """The default class: every claim without a class gets a local volume on the node."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        # Bound when a pod needs it, as on clusters whose disks belong to one zone or node.
        "volumeBindingMode": "WaitForFirstConsumer",
    }
