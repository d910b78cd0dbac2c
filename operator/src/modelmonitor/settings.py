"""Operator settings from the environment (prefix MODELMONITOR_), as docs/contracts.md lists them.

Integration contracts (the kube-prometheus-stack rule selector, the Grafana sidecar label, the
drift image) are chart values passed in here, never constants in the renderers.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DnsLabel = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)]
ReportsUrl = Annotated[str, Field(pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODELMONITOR_", frozen=True)

    # Empty: watch every namespace (cluster-wide RBAC); otherwise only these.
    namespaces: Annotated[tuple[str, ...], NoDecode] = ()
    rule_labels: dict[str, str] = Field(
        default_factory=lambda: {"release": "kube-prometheus-stack"}
    )
    dashboard_label: dict[str, str] = Field(default_factory=lambda: {"grafana_dashboard": "1"})
    drift_image: str = "ghcr.io/mlops-dev/drift-job:0.1.0"
    drift_image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    metrics_port: int = Field(default=8080, ge=1, le=65535)
    health_port: int = Field(default=8081, ge=1, le=65535)
    field_manager: str = Field(default="modelmonitor", min_length=1, max_length=128)
    # Seconds between resyncs of every monitor: repairs children edited while nobody watched.
    resync_seconds: float = Field(default=300.0, gt=0)
    # The Evidently UI the chart runs over the reports claim, by namespace: the base URL people
    # open. Monitors whose reports go to that claim there get report links; others get none.
    reports_ui_urls: dict[DnsLabel, ReportsUrl] = Field(default_factory=dict)
    reports_claim_name: str = Field(default="drift-reports", min_length=1, max_length=253)

    @field_validator("namespaces", mode="before")
    @classmethod
    def _split_namespaces(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value
