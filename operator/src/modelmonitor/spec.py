"""The ModelMonitor spec as frozen pydantic models: parsed once, then trusted by every renderer.

The CRD's OpenAPI schema (manifests/crds/) rejects most mistakes at the API server; this model
repeats those rules (so `modelmonitor render` gives the same answers offline) and adds the ones
a schema cannot express: a latency threshold that is a histogram bucket, disjoint column lists,
`minRows <= maxRows`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from modelmonitor.durations import parse_duration
from modelmonitor.schedule import parse_schedule

# Evidently 0.7's tabular stat tests (text-only tests left out: the store holds tabular rows).
DriftMethod = Literal[
    "auto",
    "TVD",
    "anderson",
    "chisquare",
    "cramer_von_mises",
    "ed",
    "empirical_mmd",
    "es",
    "fisher_exact",
    "g_test",
    "hellinger",
    "jensenshannon",
    "kl_div",
    "ks",
    "mannw",
    "psi",
    "t_test",
    "wasserstein",
    "z",
]
DRIFT_METHODS: tuple[str, ...] = get_args(DriftMethod)
# The app's request-duration histogram buckets (docs/contracts.md): a latency SLO can only be
# measured at one of them.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
MODEL_NAME_PATTERN = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
METRIC_PREFIX_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
LABEL_NAME_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]*$"


def _duration(text: str) -> str:
    parse_duration(text)
    return text


def _duration_or_zero(text: str) -> str:
    if re.fullmatch(r"0(s|m|h|d|w)", text):
        return text
    return _duration(text)


def _cron(text: str) -> str:
    parse_schedule(text)
    return text


def _latency_bucket(value: float) -> float:
    if value not in LATENCY_BUCKETS:
        buckets = ", ".join(f"{bucket:g}" for bucket in LATENCY_BUCKETS)
        raise ValueError(f"must be one of the latency histogram buckets: {buckets}")
    return value


def _label_names(labels: dict[str, str]) -> dict[str, str]:
    for name in labels:
        if not re.match(LABEL_NAME_PATTERN, name):
            raise ValueError(f"{name!r} is not a Prometheus label name")
    return labels


Duration = Annotated[str, AfterValidator(_duration)]
DurationOrZero = Annotated[str, AfterValidator(_duration_or_zero)]
DecisionName = Annotated[str, Field(min_length=1, max_length=32)]
GroupName = Annotated[str, Field(min_length=1, max_length=63)]
Fraction = Annotated[float, Field(ge=0, le=1)]
Percent = Annotated[float, Field(gt=0, lt=100)]
DnsLabel = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)]
DnsSubdomain = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]
ColumnName = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^=,]+$")]


class _Frozen(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )


class ModelRef(_Frozen):
    name: Annotated[str, Field(min_length=1, max_length=63, pattern=MODEL_NAME_PATTERN)]
    version: (
        Annotated[str, Field(min_length=1, max_length=63, pattern=MODEL_NAME_PATTERN)] | None
    ) = None
    # Unset: what the model service registered in the store.
    positive_class: DecisionName | None = None
    reference_decision_shares: Annotated[
        dict[DecisionName, Annotated[float, Field(ge=0, le=1)]], Field(max_length=20)
    ] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _shares(self) -> ModelRef:
        shares = self.reference_decision_shares
        if shares and abs(sum(shares.values()) - 1) > 0.01:
            raise ValueError(f"referenceDecisionShares add up to {sum(shares.values()):g}, not 1")
        if self.positive_class and shares and self.positive_class not in shares:
            raise ValueError(
                f"positiveClass {self.positive_class!r} is not in referenceDecisionShares"
            )
        return self


class TargetRef(_Frozen):
    service: DnsLabel
    port: Annotated[str, Field(min_length=1, max_length=15)] = "http"
    metrics_prefix: Annotated[str, Field(pattern=METRIC_PREFIX_PATTERN)] = "credit_api"


class SecretKeyRef(_Frozen):
    name: DnsSubdomain
    key: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")] = "dsn"


class StoreSpec(_Frozen):
    secret_ref: SecretKeyRef


class ColumnsSpec(_Frozen):
    numerical: tuple[ColumnName, ...] = ()
    categorical: tuple[ColumnName, ...] = ()

    @model_validator(mode="after")
    def _disjoint(self) -> ColumnsSpec:
        both = sorted(set(self.numerical) & set(self.categorical))
        if both:
            raise ValueError(f"columns listed as both numerical and categorical: {both}")
        return self


class ColumnOverride(_Frozen):
    name: ColumnName
    method: DriftMethod | None = None
    threshold: Fraction | None = None


class ReportsSpec(_Frozen):
    persistent_volume_claim: DnsSubdomain
    keep: Annotated[int, Field(ge=1, le=1000)] = 20


Quantity = Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")]


ResourceName = Literal["cpu", "memory", "ephemeral-storage"]


def _default_requests() -> dict[ResourceName, str]:
    return {"cpu": "100m", "memory": "256Mi"}


def _default_limits() -> dict[ResourceName, str]:
    return {"memory": "1Gi"}


class ResourcesSpec(_Frozen):
    requests: dict[ResourceName, Quantity] = Field(default_factory=_default_requests)
    limits: dict[ResourceName, Quantity] = Field(default_factory=_default_limits)


class DriftSpec(_Frozen):
    schedule: Annotated[str, AfterValidator(_cron)] = "*/15 * * * *"
    window: Duration = "1h"
    min_rows: Annotated[int, Field(ge=1)] = 200
    max_rows: Annotated[int, Field(ge=1)] = 50_000
    columns: ColumnsSpec | None = None
    method: DriftMethod = "auto"
    threshold: Fraction | None = None
    per_column: tuple[ColumnOverride, ...] = ()
    drift_share: Fraction = 0.5
    reports: ReportsSpec | None = None
    suspend: StrictBool = False
    stale_after: Duration | None = None
    active_deadline_seconds: Annotated[int, Field(ge=30, le=86_400)] = 900
    backoff_limit: Annotated[int, Field(ge=0, le=10)] = 1
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)

    @model_validator(mode="after")
    def _consistent(self) -> DriftSpec:
        if self.min_rows > self.max_rows:
            raise ValueError(f"minRows ({self.min_rows}) is above maxRows ({self.max_rows})")
        names = [override.name for override in self.per_column]
        if len(names) != len(set(names)):
            raise ValueError("perColumn names a column more than once")
        return self


class QualitySpec(_Frozen):
    window: Duration = "1d"
    label_delay: DurationOrZero = "0s"
    min_labelled: Annotated[int, Field(ge=1)] = 100


class CategoryGroup(_Frozen):
    name: GroupName
    values: tuple[str, ...] = Field(min_length=1)


class NumericBin(_Frozen):
    name: GroupName
    below: float | None = None


class FairnessAttribute(_Frozen):
    feature: Annotated[str, Field(min_length=1, max_length=256)]
    reference: GroupName
    groups: tuple[CategoryGroup, ...] = ()
    bins: tuple[NumericBin, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> FairnessAttribute:
        if self.groups and self.bins:
            raise ValueError(f"{self.feature}: groups and bins exclude each other")
        names = [group.name for group in self.groups] + [bin_.name for bin_ in self.bins]
        if len(names) != len(set(names)):
            raise ValueError(f"{self.feature}: a group name is used twice")
        values = [value for group in self.groups for value in group.values]
        if len(values) != len(set(values)):
            raise ValueError(f"{self.feature}: a category is in two groups")
        if self.bins:
            bounds = [b.below for b in self.bins[:-1] if b.below is not None]
            if len(bounds) != len(self.bins) - 1 or self.bins[-1].below is not None:
                raise ValueError(f"{self.feature}: only the last bin has no `below`")
            if bounds != sorted(set(bounds)):
                raise ValueError(f"{self.feature}: bins must ascend")
        if names and self.reference not in names:
            raise ValueError(f"{self.feature}: reference {self.reference!r} is not a group")
        return self


class FairnessSpec(_Frozen):
    favourable_decision: DecisionName
    min_rows_per_group: Annotated[int, Field(ge=1)] = 30
    min_disparate_impact_ratio: Annotated[float, Field(gt=0, le=1)] = 0.8
    max_disparate_impact_ratio: Annotated[float, Field(ge=1)] = 1.25
    attributes: tuple[FairnessAttribute, ...] = Field(min_length=1, max_length=10)

    @model_validator(mode="after")
    def _distinct(self) -> FairnessSpec:
        features = [attribute.feature for attribute in self.attributes]
        if len(features) != len(set(features)):
            raise ValueError("attributes lists a feature more than once")
        return self


QualityMetric = Literal["rocAuc", "precision", "recall", "f1", "brierScore", "calibrationError"]
# The metrics where lower is better: their objective is a ceiling, the others' a floor.
LOWER_IS_BETTER: frozenset[str] = frozenset({"brierScore", "calibrationError"})


class QualitySlo(_Frozen):
    metric: QualityMetric = "rocAuc"
    threshold: Annotated[float, Field(ge=0, le=1)]
    target: Percent = 99.0


class AvailabilitySlo(_Frozen):
    target: Percent = 99.5


class LatencySlo(_Frozen):
    threshold_seconds: Annotated[float, AfterValidator(_latency_bucket)] = 0.3
    target: Percent = 95.0


class SloSpec(_Frozen):
    availability: AvailabilitySlo = Field(default_factory=AvailabilitySlo)
    latency: LatencySlo = Field(default_factory=LatencySlo)
    quality: QualitySlo | None = None
    window: Duration = "30d"

    @model_validator(mode="after")
    def _long_enough(self) -> SloSpec:
        if parse_duration(self.window) < 3600:
            raise ValueError("window must be at least 1h")
        return self


class AlertDurations(_Frozen):
    """How long each condition must hold before its alert fires (Prometheus `for`)."""

    api_down: Duration = "5m"
    model_not_loaded: Duration = "5m"
    volume_collapse: Duration = "15m"
    decision_ratio: Duration = "30m"
    records_dropped: Duration = "5m"
    store_unavailable: Duration = "5m"
    drift_job_failed: Duration = "1m"


class DecisionRatioSpec(_Frozen):
    tolerance: Fraction = 0.15
    window: Duration = "1h"


class VolumeSpec(_Frozen):
    min_ratio: Annotated[float, Field(gt=0, lt=1)] = 0.2


class AlertsSpec(_Frozen):
    labels: Annotated[dict[str, str], AfterValidator(_label_names)] = Field(default_factory=dict)
    runbook_base_url: Annotated[str, Field(alias="runbookBaseURL", pattern=r"^https?://\S+$")] = (
        "https://github.com/mlops-dev/credit-model-monitoring/blob/main/docs/runbooks.md"
    )
    durations: AlertDurations = Field(default_factory=AlertDurations, alias="for")
    decisions: DecisionRatioSpec = Field(default_factory=DecisionRatioSpec)
    volume: VolumeSpec = Field(default_factory=VolumeSpec)


class DashboardSpec(_Frozen):
    enabled: StrictBool = True
    title: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class MonitorSpec(_Frozen):
    model: ModelRef
    target: TargetRef
    store: StoreSpec
    drift: DriftSpec = Field(default_factory=DriftSpec)
    quality: QualitySpec | None = None
    fairness: FairnessSpec | None = None
    slo: SloSpec = Field(default_factory=SloSpec)
    alerts: AlertsSpec = Field(default_factory=AlertsSpec)
    dashboard: DashboardSpec = Field(default_factory=DashboardSpec)

    @model_validator(mode="after")
    def _quality_objective_needs_quality(self) -> MonitorSpec:
        if self.slo.quality is not None and self.quality is None:
            raise ValueError("slo.quality needs spec.quality (how the quality is judged)")
        return self


class Monitor(_Frozen):
    """One ModelMonitor: where it lives and what it asks for."""

    name: DnsSubdomain
    namespace: DnsLabel
    spec: MonitorSpec


class InvalidSpecError(ValueError):
    """The spec breaks a rule; `field` is its dotted path (e.g. `spec.slo.latency.target`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _field_path(location: tuple[int | str, ...]) -> str:
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part not in {"function-after", "list", "tuple"} and "[" not in str(part):
            path += f".{part}" if path else str(part)
    return path


def parse_monitor(manifest: Mapping[str, Any]) -> Monitor:
    """A ModelMonitor object (as the API returns it) as a Monitor; InvalidSpecError if bad."""
    metadata = manifest.get("metadata") or {}
    document = {
        "name": metadata.get("name"),
        "namespace": metadata.get("namespace") or "default",
        "spec": manifest.get("spec"),
    }
    try:
        return Monitor.model_validate(document)
    except ValidationError as error:
        first = error.errors()[0]
        field = _field_path(tuple(first["loc"]))
        field = field.replace("name", "metadata.name", 1) if field == "name" else field
        field = "metadata.namespace" if field == "namespace" else field
        message = first["msg"].removeprefix("Value error, ")
        raise InvalidSpecError(field or "spec", message) from error
