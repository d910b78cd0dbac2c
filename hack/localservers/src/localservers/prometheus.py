"""Real Prometheus and Alertmanager servers on loopback, configured per test or per demo."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

from localservers.binaries import require
from localservers.ports import free_port
from localservers.process import ServerProcess

Sample = dict[str, Any]


class PrometheusApi:
    """Queries to a running Prometheus at ``url`` (ours, or one in a cluster behind a
    port-forward)."""

    url: str

    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, promql: str) -> list[Sample]:
        """An instant query; raises with Prometheus's own error text on a bad expression."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            raise ValueError(f"query {promql!r} failed: {body.get('error', response.text)}")
        result: list[Sample] = body["data"]["result"]
        return result

    def wait_for(
        self,
        promql: str,
        predicate: Callable[[list[Sample]], bool] = bool,
        timeout: float = 60.0,
    ) -> list[Sample]:
        deadline = time.monotonic() + timeout
        result: list[Sample] = []
        while time.monotonic() < deadline:
            result = self.query(promql)
            if predicate(result):
                return result
            time.sleep(0.5)
        raise TimeoutError(f"{promql!r} never satisfied the condition; last result: {result}")

    def alerts(self) -> list[Sample]:
        body = httpx.get(f"{self.url}/api/v1/alerts", timeout=10).json()
        alerts: list[Sample] = body["data"]["alerts"]
        return alerts

    def rule_groups(self) -> list[Sample]:
        """The rule groups Prometheus has loaded (name, file, rules)."""
        body = httpx.get(f"{self.url}/api/v1/rules", timeout=10).json()
        groups: list[Sample] = body["data"]["groups"]
        return groups

    def targets(self) -> list[Sample]:
        """The active scrape targets (labels, health, lastError)."""
        body = httpx.get(f"{self.url}/api/v1/targets", timeout=10).json()
        targets: list[Sample] = body["data"]["activeTargets"]
        return targets


class PrometheusServer(PrometheusApi):
    """Prometheus with the given scrape configs and rule files, optionally alerting."""

    def __init__(
        self,
        scrape_configs: Sequence[dict[str, Any]],
        rule_files: Sequence[Path] = (),
        *,
        alertmanager_url: str | None = None,
        scrape_interval: str = "1s",
        evaluation_interval: str = "1s",
        external_labels: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        super().__init__(f"http://127.0.0.1:{self.port}")
        self.work_dir = Path(tempfile.mkdtemp(prefix="localprom-"))
        self.config_path = self.work_dir / "prometheus.yml"
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": scrape_interval,
                "evaluation_interval": evaluation_interval,
                "external_labels": external_labels or {},
            },
            "scrape_configs": list(scrape_configs),
            "rule_files": [str(p) for p in rule_files],
        }
        if alertmanager_url is not None:
            target = alertmanager_url.removeprefix("http://")
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [target]}]}]}
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self._process = ServerProcess(
            [
                str(require("prometheus")),
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.work_dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
                # Alerts that fire before the Alertmanager is discovered (~5 s) are otherwise
                # resent only after the 1 m default: far too slow for tests and the demo.
                "--rules.alert.resend-delay=1s",
                "--log.level=warn",
            ],
            self.work_dir / "prometheus.log",
        )

    def start(self, timeout: float = 30.0) -> None:
        self._process.start()
        self._process.wait_until(
            lambda: httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200,
            timeout,
            "Prometheus",
        )

    def stop(self) -> None:
        self._process.stop()
        shutil.rmtree(self.work_dir, ignore_errors=True)

    def reload(self) -> None:
        httpx.post(f"{self.url}/-/reload", timeout=10).raise_for_status()


class AlertmanagerServer:
    """Alertmanager that sends every alert to one webhook."""

    def __init__(
        self, webhook_url: str, *, group_wait: str = "1s", repeat_interval: str = "1m"
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.work_dir = Path(tempfile.mkdtemp(prefix="localam-"))
        config = {
            "route": {
                "receiver": "webhook",
                "group_by": ["alertname"],
                "group_wait": group_wait,
                "group_interval": group_wait,
                "repeat_interval": repeat_interval,
            },
            "receivers": [
                {
                    "name": "webhook",
                    "webhook_configs": [{"url": webhook_url, "send_resolved": True}],
                }
            ],
        }
        config_path = self.work_dir / "alertmanager.yml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self._process = ServerProcess(
            [
                str(require("prometheus-alertmanager")),
                f"--config.file={config_path}",
                f"--storage.path={self.work_dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",  # a single instance: no gossip port
                "--log.level=info",
            ],
            self.work_dir / "alertmanager.log",
        )

    def start(self, timeout: float = 30.0) -> None:
        self._process.start()
        self._process.wait_until(
            lambda: httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200,
            timeout,
            "Alertmanager",
        )

    def stop(self) -> None:
        self._process.stop()
        shutil.rmtree(self.work_dir, ignore_errors=True)

    def alerts(self) -> list[Sample]:
        alerts: list[Sample] = httpx.get(f"{self.url}/api/v2/alerts", timeout=10).json()
        return alerts
