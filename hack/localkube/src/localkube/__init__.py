"""A real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager) built from
Go modules and run on loopback, for tests and local runs. See hack/localkube/README.md.

Entry points: the pytest fixtures in ``localkube.pytest_plugin`` (``kube``, ``kube_namespace``,
``helm_binary``, ``kubectl_binary``), ``localkube.tools`` (binary paths), ``localkube.crds``
(the prometheus-operator CRD files) and the ``localkube`` command.
"""
