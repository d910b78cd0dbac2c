"""Links to a monitor's runs in the Evidently UI, for the children that show them.

The monitoring chart runs the UI over the reports claim (settings.reports_claim_name) of some
namespaces, each at a base URL (settings.reports_ui_urls). A monitor whose reports go to that
claim in one of them gets links (the drift job's `--ui-url`, the alerts' `report_url`, the
dashboard's link); any other monitor gets none, so no link leads to a page that cannot exist.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from modelmonitor import reportsui
from modelmonitor.settings import Settings
from modelmonitor.spec import Monitor

# The annotation the alerts of a monitor's runs carry (drift; quality and fairness alike).
REPORT_URL_ANNOTATION = "report_url"


@dataclass(frozen=True)
class ReportLinks:
    """The UI that serves the monitor's runs, and the monitor's project in it."""

    base_url: str
    project: uuid.UUID

    @property
    def project_url(self) -> str:
        """The project's page (its dashboard over the runs)."""
        return reportsui.project_url(self.base_url, self.project)

    @property
    def runs_url(self) -> str:
        """The project's runs, newest first."""
        return reportsui.runs_url(self.base_url, self.project)


def report_links(monitor: Monitor, settings: Settings) -> ReportLinks | None:
    """The monitor's links, or None when no UI serves its runs."""
    reports = monitor.spec.drift.reports
    base_url = settings.reports_ui_urls.get(monitor.namespace)
    if reports is None or base_url is None:
        return None
    if reports.persistent_volume_claim != settings.reports_claim_name:
        return None
    name = reportsui.project_name(monitor.namespace, monitor.name)
    return ReportLinks(base_url, reportsui.project_id(name))


def report_annotations(links: ReportLinks | None) -> dict[str, str]:
    """`report_url` (the monitor's runs) for an alert about what a run found; none without UI."""
    return {REPORT_URL_ANNOTATION: links.runs_url} if links is not None else {}
