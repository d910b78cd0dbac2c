"""The cluster's address plan, in one place.

Service and pod addresses exist only inside this machine: the pod network is a bridge the node
creates (with its gateway address, where the API server listens when a node runs) and the
network namespaces of its pods. Nothing is routed or masqueraded off the machine
(localkube.node.network drops forwarded traffic that would leave the bridge).
"""

from __future__ import annotations

# --service-cluster-ip-range; its first address is the in-cluster `kubernetes` Service.
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
KUBERNETES_SERVICE_IP = "10.0.0.1"
# The cluster DNS Service (CoreDNS), as kubeadm places it: the tenth address of the range.
CLUSTER_DNS_IP = "10.0.0.10"
CLUSTER_DOMAIN = "cluster.local"

# The node's pod network: one bridge, one /24 (a single node needs no more).
BRIDGE = "localkube0"
POD_CIDR = "10.244.0.0/24"
POD_PREFIX_LENGTH = 24
# The bridge's own address: the pods' gateway, the node's InternalIP, and the address the API
# server, the kubelet and kube-proxy listen on when a node runs (pods cannot reach loopback).
NODE_ADDRESS = "10.244.0.1"
