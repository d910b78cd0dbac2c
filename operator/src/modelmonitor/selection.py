"""Whether a Prometheus picks up a monitor's rules and scrapes its target, and why not.

Pure functions over plain objects (no client, no clock): the two verdicts behind the
`RulesSelected` and `TargetSelected` conditions, with the reason in words a user can act on.
They follow prometheus-operator's own selection (v0.93: `pkg/prometheus/resource_selector.go`,
`pkg/operator/operator.go` `SelectNamespacesFromCache`, `pkg/prometheus/promcfg.go`):

- A label selector (`metav1.LabelSelector`) that is absent selects nothing; `{}` selects
  everything; `matchLabels` and `matchExpressions` (In, NotIn, Exists, DoesNotExist) are ANDed.
  A selector Kubernetes would refuse (an unknown operator, In without values) selects nothing.
- A Prometheus' `ruleNamespaceSelector` or `serviceMonitorNamespaceSelector` that is absent
  means the Prometheus' own namespace only; otherwise it selects namespaces by their labels.
- A ServiceMonitor's `namespaceSelector`: `any: true` every namespace, `matchNames` those,
  neither its own namespace; a Prometheus with `ignoreNamespaceSelectors` uses the own one.
- A ServiceMonitor endpoint's `port` names a Service port; without it, `targetPort` names or
  numbers a container port (compared here with the Service port's `targetPort`); with neither,
  every port of the Service is scraped.
- A selected ServiceMonitor is still left out whole (a warning in prometheus-operator's log,
  nothing on the object) when an endpoint's `scrapeTimeout` exceeds its interval (its own, else
  the Prometheus' `scrapeInterval`, 30s when unset).

Entry points: `rules_verdict` and `target_verdict` (with `prometheus_from`,
`service_monitor_from`, `service_from` to read the API objects).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelmonitor.durations import parse_prometheus_duration

Labels = Mapping[str, str]

# The label the API server sets on every namespace (its name): selectors often use it.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
# How many objects a message names before it says "and N more": messages stay short.
MAX_NAMED = 3
# The Prometheus CRD's default `scrapeInterval`.
DEFAULT_SCRAPE_INTERVAL = "30s"

_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


@dataclass(frozen=True)
class Requirement:
    """One term of a selector; `operator` "=" stands for a matchLabels entry."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def mismatch(self, labels: Labels) -> str | None:
        """Why `labels` fail this term, or None if they pass."""
        value = labels.get(self.key)
        if self.operator in ("=", "In"):
            return self._membership(value)
        if self.operator == "NotIn":
            listed = ", ".join(self.values)
            return (
                f"label {self.key} is {value} (must not be {listed})"
                if value in self.values
                else None
            )
        if self.operator == "Exists":
            return None if value is not None else f"label {self.key} missing"
        return f"label {self.key} present (must be absent)" if value is not None else None

    def _membership(self, value: str | None) -> str | None:
        wanted = ", ".join(self.values)
        if value is None:
            if self.operator == "=":
                return f"label {self.key}={wanted} missing"
            return f"label {self.key} missing (one of {wanted})"
        return None if value in self.values else f"label {self.key} is {value}, not {wanted}"


@dataclass(frozen=True)
class LabelSelector:
    """A present label selector; `error` says why Kubernetes would refuse it (selects nothing)."""

    requirements: tuple[Requirement, ...] = ()
    error: str | None = None

    def mismatches(self, labels: Labels) -> list[str]:
        """Why `labels` are not selected; empty when they are."""
        if self.error is not None:
            return [f"invalid selector: {self.error}"]
        return [why for term in self.requirements if (why := term.mismatch(labels)) is not None]


def selects(selector: LabelSelector | None, labels: Labels) -> bool:
    """The Kubernetes meaning: None (absent) selects nothing, `{}` everything."""
    return selector is not None and not selector.mismatches(labels)


def selector_from(raw: object) -> LabelSelector | None:
    """Read a `metav1.LabelSelector` as the API returns it; None when absent (`null`)."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        return LabelSelector(error="not an object")
    terms: list[Requirement] = []
    match_labels = raw.get("matchLabels") or {}
    if not isinstance(match_labels, Mapping):
        return LabelSelector(error="matchLabels is not an object")
    for key, value in sorted(match_labels.items()):
        terms.append(Requirement(str(key), "=", (str(value),)))
    for index, expression in enumerate(raw.get("matchExpressions") or []):
        term = _expression(expression)
        if isinstance(term, str):
            return LabelSelector(error=f"matchExpressions[{index}]: {term}")
        terms.append(term)
    return LabelSelector(tuple(terms))


def _expression(raw: object) -> Requirement | str:
    if not isinstance(raw, Mapping) or not raw.get("key"):
        return "no key"
    operator = raw.get("operator")
    values = tuple(str(value) for value in raw.get("values") or [])
    if operator not in _OPERATORS:
        return f"operator {operator!r} is not one of {', '.join(_OPERATORS)}"
    if operator in ("In", "NotIn") and not values:
        return f"operator {operator} needs values"
    if operator in ("Exists", "DoesNotExist") and values:
        return f"operator {operator} takes no values"
    return Requirement(str(raw["key"]), str(operator), values)


# --- the objects, as far as selection goes -----------------------------------------------------


@dataclass(frozen=True)
class PrometheusSelectors:
    """What of a `Prometheus` decides which rules and ServiceMonitors it takes."""

    namespace: str
    name: str
    rule_selector: LabelSelector | None = None
    rule_namespace_selector: LabelSelector | None = None
    service_monitor_selector: LabelSelector | None = None
    service_monitor_namespace_selector: LabelSelector | None = None
    ignore_namespace_selectors: bool = False
    # The interval of endpoints that set none (the CRD defaults it to 30s).
    scrape_interval: str = DEFAULT_SCRAPE_INTERVAL

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class EndpointPort:
    """Which port a ServiceMonitor endpoint scrapes: `port` (a Service port name) or
    `target_port` (a container port name or number); neither means every port. Its
    `interval` and `scrape_timeout`, which prometheus-operator checks against each other."""

    port: str | None = None
    target_port: str | int | None = None
    interval: str | None = None
    scrape_timeout: str | None = None

    def describe(self) -> str:
        if self.port:
            return f"port {self.port}"
        if self.target_port is not None:
            return f"targetPort {self.target_port}"
        return "every port"


@dataclass(frozen=True)
class ServiceMonitorSelection:
    """What of a `ServiceMonitor` decides which Services it scrapes and who selects it."""

    namespace: str
    name: str
    labels: Labels = field(default_factory=dict)
    selector: LabelSelector = field(default_factory=LabelSelector)
    any_namespace: bool = False
    match_names: tuple[str, ...] = ()
    endpoints: tuple[EndpointPort, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def covers(self, namespace: str, prometheus: PrometheusSelectors | None = None) -> bool:
        """Whether it looks for Services in `namespace` (for that Prometheus, if one is given)."""
        if prometheus is not None and prometheus.ignore_namespace_selectors:
            return namespace == self.namespace
        if self.any_namespace:
            return True
        return namespace in (self.match_names or (self.namespace,))


@dataclass(frozen=True)
class ServicePort:
    name: str
    port: int
    target_port: str | int


@dataclass(frozen=True)
class ServiceSelection:
    """A Service's labels and ports: what a ServiceMonitor matches."""

    namespace: str
    name: str
    labels: Labels = field(default_factory=dict)
    ports: tuple[ServicePort, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Inventory:
    """What the cluster holds that selection depends on: the Prometheus objects, the
    ServiceMonitors and the namespaces' labels (keyed by name)."""

    prometheuses: tuple[PrometheusSelectors, ...] = ()
    service_monitors: tuple[ServiceMonitorSelection, ...] = ()
    namespace_labels: Mapping[str, Labels] = field(default_factory=dict)

    def labels_of(self, namespace: str) -> Labels:
        """A namespace's labels; one not listed still has the label the API server sets."""
        return self.namespace_labels.get(namespace) or {NAMESPACE_NAME_LABEL: namespace}


def _metadata(obj: Mapping[str, Any]) -> tuple[str, str, dict[str, str]]:
    metadata = obj.get("metadata") or {}
    labels = {str(k): str(v) for k, v in (metadata.get("labels") or {}).items()}
    return str(metadata.get("namespace", "")), str(metadata.get("name", "")), labels


def prometheus_from(obj: Mapping[str, Any]) -> PrometheusSelectors:
    """A `monitoring.coreos.com/v1` Prometheus as the API returns it."""
    namespace, name, _ = _metadata(obj)
    spec = obj.get("spec") or {}
    return PrometheusSelectors(
        namespace=namespace,
        name=name,
        rule_selector=selector_from(spec.get("ruleSelector")),
        rule_namespace_selector=selector_from(spec.get("ruleNamespaceSelector")),
        service_monitor_selector=selector_from(spec.get("serviceMonitorSelector")),
        service_monitor_namespace_selector=selector_from(
            spec.get("serviceMonitorNamespaceSelector")
        ),
        ignore_namespace_selectors=bool(spec.get("ignoreNamespaceSelectors")),
        scrape_interval=str(spec.get("scrapeInterval") or DEFAULT_SCRAPE_INTERVAL),
    )


def service_monitor_from(obj: Mapping[str, Any]) -> ServiceMonitorSelection:
    """A `monitoring.coreos.com/v1` ServiceMonitor as the API returns it."""
    namespace, name, labels = _metadata(obj)
    spec = obj.get("spec") or {}
    namespaces = spec.get("namespaceSelector") or {}
    # The CRD requires `selector`; prometheus-operator reads a missing one as `{}` (everything).
    selector = selector_from(spec.get("selector") or {}) or LabelSelector()
    return ServiceMonitorSelection(
        namespace=namespace,
        name=name,
        labels=labels,
        selector=selector,
        any_namespace=bool(namespaces.get("any")),
        match_names=tuple(str(n) for n in namespaces.get("matchNames") or []),
        endpoints=tuple(
            EndpointPort(
                port=str(endpoint["port"]) if endpoint.get("port") else None,
                target_port=endpoint.get("targetPort"),
                interval=str(endpoint["interval"]) if endpoint.get("interval") else None,
                scrape_timeout=(
                    str(endpoint["scrapeTimeout"]) if endpoint.get("scrapeTimeout") else None
                ),
            )
            for endpoint in spec.get("endpoints") or []
        ),
    )


def service_from(obj: Mapping[str, Any]) -> ServiceSelection:
    """A `v1` Service as the API returns it."""
    namespace, name, labels = _metadata(obj)
    ports = []
    for port in (obj.get("spec") or {}).get("ports") or []:
        number = int(port.get("port", 0))
        # An unset targetPort is the port number itself (the API server defaults it so).
        ports.append(
            ServicePort(str(port.get("name") or ""), number, port.get("targetPort", number))
        )
    return ServiceSelection(namespace, name, labels, tuple(ports))


# --- the verdicts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """A condition's status (None: Unknown), CamelCase reason and message."""

    status: bool | None
    reason: str
    message: str


NO_PROMETHEUS = Verdict(None, "NoPrometheus", "no Prometheus object in the cluster")


def _named(items: Sequence[str], noun: str, separator: str = ", ") -> str:
    """`a, b and c` (or `a; b; c` for items that hold commas), `... and 2 more <noun>` past
    MAX_NAMED items."""
    if len(items) > MAX_NAMED:
        return f"{separator.join(items[:MAX_NAMED])} and {len(items) - MAX_NAMED} more {noun}"
    if len(items) > 1 and separator == ", ":
        return f"{separator.join(items[:-1])} and {items[-1]}"
    return separator.join(items)


def _namespace_reason(
    prometheus: PrometheusSelectors,
    selector: LabelSelector | None,
    field_name: str,
    namespace: str,
    labels: Labels,
) -> str | None:
    """Why the Prometheus' namespace selector leaves `namespace` out, or None if it takes it."""
    if selector is None:
        if namespace == prometheus.namespace:
            return None
        return (
            f"namespace {namespace} not selected by {prometheus.ref} "
            f"(no {field_name}: only its own namespace {prometheus.namespace})"
        )
    why = selector.mismatches(labels)
    if not why:
        return None
    return (
        f"namespace {namespace} not selected by {prometheus.ref} ({field_name}: {'; '.join(why)})"
    )


def _labels_reason(
    prometheus: PrometheusSelectors, selector: LabelSelector | None, field_name: str, labels: Labels
) -> str | None:
    """Why the Prometheus' object selector leaves `labels` out, or None if it takes them."""
    if selector is None:
        return f"{prometheus.ref} has no {field_name} (it selects none)"
    why = selector.mismatches(labels)
    if not why:
        return None
    return f"{', '.join(why)} ({field_name} of {prometheus.ref})"


def _split(
    prometheuses: Iterable[PrometheusSelectors],
    why_not: Callable[[PrometheusSelectors], list[str]],
) -> tuple[list[str], list[str]]:
    """(the Prometheus that select, the reasons of those that do not), in name order."""
    selecting: list[str] = []
    reasons: list[str] = []
    for prometheus in sorted(prometheuses, key=lambda p: (p.namespace, p.name)):
        found = why_not(prometheus)
        if found:
            reasons.append("; ".join(found))
        else:
            selecting.append(prometheus.ref)
    return selecting, reasons


def rules_verdict(inventory: Inventory, rule_namespace: str, rule_labels: Labels) -> Verdict:
    """Whether some Prometheus loads a PrometheusRule in `rule_namespace` with `rule_labels`.

    True names the Prometheus that select it. False says, for each Prometheus, which label or
    namespace keeps the rule out. Its reason is `RuleLabelsNotSelected` when only the rule's
    labels do (every Prometheus takes the namespace and has a ruleSelector: relabelling the
    rule is the fix), else `NotSelected`.
    """
    if not inventory.prometheuses:
        return NO_PROMETHEUS
    ns_labels = inventory.labels_of(rule_namespace)
    namespace_reasons = {
        p.ref: _namespace_reason(
            p, p.rule_namespace_selector, "ruleNamespaceSelector", rule_namespace, ns_labels
        )
        for p in inventory.prometheuses
    }

    def why_not(prometheus: PrometheusSelectors) -> list[str]:
        reasons = (
            namespace_reasons[prometheus.ref],
            _labels_reason(prometheus, prometheus.rule_selector, "ruleSelector", rule_labels),
        )
        return [reason for reason in reasons if reason is not None]

    selecting, refusals = _split(inventory.prometheuses, why_not)
    if selecting:
        verb = "selects" if len(selecting) == 1 else "select"
        return Verdict(True, "Selected", f"{_named(selecting, 'Prometheus')} {verb} it")
    only_labels = all(
        namespace_reasons[p.ref] is None and p.rule_selector is not None
        for p in inventory.prometheuses
    )
    return Verdict(
        False,
        "RuleLabelsNotSelected" if only_labels else "NotSelected",
        f"no Prometheus selects it: {_named(refusals, 'Prometheus', '; ')}",
    )


def _port_matches(endpoint: EndpointPort, port: ServicePort) -> bool:
    if endpoint.port:
        return endpoint.port == port.name
    if endpoint.target_port is not None:
        # Without the pods, a container port is known only through the Service's targetPort.
        return str(endpoint.target_port) == str(port.target_port)
    return True


def _service_monitor_reasons(
    inventory: Inventory,
    prometheus: PrometheusSelectors,
    monitor: ServiceMonitorSelection,
    service_namespace: str,
) -> list[str]:
    """Why the Prometheus does not scrape the Service through this ServiceMonitor."""
    namespace = _namespace_reason(
        prometheus,
        prometheus.service_monitor_namespace_selector,
        "serviceMonitorNamespaceSelector",
        monitor.namespace,
        inventory.labels_of(monitor.namespace),
    )
    labels = _labels_reason(
        prometheus, prometheus.service_monitor_selector, "serviceMonitorSelector", monitor.labels
    )
    ignored = None
    if not monitor.covers(service_namespace, prometheus):
        ignored = (
            f"{prometheus.ref} ignores namespace selectors: a ServiceMonitor finds Services in "
            f"its own namespace only"
        )
    return [reason for reason in (namespace, labels, ignored) if reason is not None]


def _selecting(
    inventory: Inventory, monitor: ServiceMonitorSelection, service_namespace: str
) -> tuple[list[str], list[str]]:
    """(the Prometheus that scrape through this ServiceMonitor, the reasons of the others)."""

    def why_not(prometheus: PrometheusSelectors) -> list[str]:
        return _service_monitor_reasons(inventory, prometheus, monitor, service_namespace)

    return _split(inventory.prometheuses, why_not)


def skipped_because(
    prometheus: PrometheusSelectors, monitor: ServiceMonitorSelection
) -> str | None:
    """Why prometheus-operator leaves the whole ServiceMonitor out of that Prometheus' config
    although it selects it, or None: an endpoint whose scrapeTimeout exceeds its interval (its
    own, else the Prometheus' scrapeInterval), or a duration it cannot read."""
    for index, endpoint in enumerate(monitor.endpoints):
        if endpoint.scrape_timeout is None:
            continue
        interval = endpoint.interval or prometheus.scrape_interval
        try:
            too_long = parse_prometheus_duration(endpoint.scrape_timeout) > (
                parse_prometheus_duration(interval)
            )
        except ValueError as error:
            return f"endpoints[{index}]: {error}"
        if too_long:
            whose = (
                "its interval" if endpoint.interval else f"the scrapeInterval of {prometheus.ref}"
            )
            return (
                f"endpoints[{index}]: scrapeTimeout {endpoint.scrape_timeout} is longer than "
                f"{whose} ({interval})"
            )
    return None


def _service_port(service: ServiceSelection, port_name: str) -> ServicePort | Verdict:
    """The Service's port of that name, or the False verdict that lists its ports."""
    port = next((p for p in service.ports if p.name == port_name), None)
    if port is not None:
        return port
    names = [p.name or str(p.port) for p in service.ports]
    listed = f"its ports: {', '.join(names)}" if names else "it has no ports"
    return Verdict(
        False, "PortNotFound", f"Service {service.ref} has no port named {port_name} ({listed})"
    )


def _scraping_monitors(
    inventory: Inventory, service: ServiceSelection, port: ServicePort
) -> list[ServiceMonitorSelection] | Verdict:
    """The ServiceMonitors that scrape this port of the Service, or the False verdict why none."""
    ordered = sorted(inventory.service_monitors, key=lambda m: (m.namespace, m.name))
    looking = [m for m in ordered if m.covers(service.namespace)]
    matching = [m for m in looking if not m.selector.mismatches(service.labels)]
    if not matching:
        near = [f"{m.ref}: {', '.join(m.selector.mismatches(service.labels))}" for m in looking]
        detail = f" (on the Service: {_named(near, 'ServiceMonitors', '; ')})" if near else ""
        return Verdict(
            False, "NoServiceMonitor", f"no ServiceMonitor matches Service {service.ref}{detail}"
        )
    scraping = [m for m in matching if any(_port_matches(e, port) for e in m.endpoints)]
    if scraping:
        return scraping
    described = [
        f"{m.ref} scrapes {', '.join(e.describe() for e in m.endpoints) or 'no endpoint'}"
        for m in matching
    ]
    return Verdict(
        False,
        "PortMismatch",
        f"no ServiceMonitor matching Service {service.ref} scrapes its port {port.name} "
        f"({_named(described, 'ServiceMonitors', '; ')})",
    )


def target_verdict(
    inventory: Inventory,
    service_ref: tuple[str, str],
    port_name: str,
    service: ServiceSelection | None,
) -> Verdict:
    """Whether some Prometheus scrapes port `port_name` of the Service `service_ref` (namespace,
    name; `service` None when it does not exist) through a ServiceMonitor.

    Checked in the order a user fixes them: the Service and its port exist; a ServiceMonitor
    matches the Service (namespace and labels); one of its endpoints scrapes that port; a
    Prometheus selects that ServiceMonitor.
    """
    if not inventory.prometheuses:
        return NO_PROMETHEUS
    if service is None:
        return Verdict(False, "ServiceNotFound", f"Service {'/'.join(service_ref)} not found")
    port = _service_port(service, port_name)
    if isinstance(port, Verdict):
        return port
    scraping = _scraping_monitors(inventory, service, port)
    if isinstance(scraping, Verdict):
        return scraping
    return _scraping_verdict(inventory, scraping, service, port_name)


def _scraping_verdict(
    inventory: Inventory,
    scraping: Sequence[ServiceMonitorSelection],
    service: ServiceSelection,
    port_name: str,
) -> Verdict:
    """Given the ServiceMonitors that match the Service's port: whether a Prometheus selects
    one of them and keeps it."""
    found: list[str] = []
    refused: list[str] = []
    skipped: list[str] = []
    by_ref = {p.ref: p for p in inventory.prometheuses}
    for monitor in scraping:
        selecting, reasons = _selecting(inventory, monitor, service.namespace)
        taking = [ref for ref in selecting if skipped_because(by_ref[ref], monitor) is None]
        if taking:
            found.append(f"{monitor.ref} (selected by {_named(taking, 'Prometheus')})")
        elif selecting:
            why = skipped_because(by_ref[selecting[0]], monitor)
            skipped.append(f"{monitor.ref} ({why})")
        else:
            refused.append(f"{monitor.ref}: {_named(reasons, 'Prometheus', '; ')}")
    if found:
        return Verdict(
            True,
            "Selected",
            f"ServiceMonitor {_named(found, 'ServiceMonitors')} scrapes port {port_name} of "
            f"{service.ref}",
        )
    if skipped:
        return Verdict(
            False,
            "ServiceMonitorSkipped",
            f"prometheus-operator skips the ServiceMonitor of Service {service.ref}, which it "
            f"selects: {_named(skipped, 'ServiceMonitors', '; ')}",
        )
    return Verdict(
        False,
        "ServiceMonitorNotSelected",
        f"no Prometheus selects the ServiceMonitor of Service {service.ref}: "
        f"{_named(refused, 'ServiceMonitors', '; ')}",
    )
