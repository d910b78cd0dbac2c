"""The local node: containerd, the kubelet, kube-proxy, CoreDNS and a volume provisioner.

Brought up as small ordered steps (``localkube.node.lifecycle``), each in a module of its own,
the way kind brings up a node: the host's network (a bridge and a guard against traffic leaving
the machine), containerd, the images, the kubelet, kube-proxy, the provisioner and the add-ons.
Everything it adds to the host is removed again when it stops (``localkube.node.sweep``), and
``localkube.node.hoststate`` can tell that the host is as it was.
"""
