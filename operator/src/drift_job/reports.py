"""The report store: a directory (a mounted volume in the cluster) of JSON and HTML reports.

Each run saves `drift-<model>-<UTC time>.json` and `.html`; only the newest `keep` runs of a
model are kept. Files are written under a temporary name and renamed, so a reader (or a run
killed half way) never sees half a report. Evidently's HTML embeds its JavaScript and fonts,
so a report opens offline.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_TIME_FORMAT = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class ReportFiles:
    json: Path
    html: Path


def report_stem(model: str, finished_at: datetime) -> str:
    """`drift-credit-score-20260101T120000Z`: sorts by time within a model."""
    return f"drift-{_UNSAFE.sub('_', model)}-{finished_at.strftime(_TIME_FORMAT)}"


def save_reports(
    snapshot: Any, directory: Path, model: str, finished_at: datetime, keep: int
) -> ReportFiles:
    """Write the snapshot's JSON and HTML, then drop this model's reports beyond the newest keep."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = report_stem(model, finished_at)
    files = ReportFiles(json=directory / f"{stem}.json", html=directory / f"{stem}.html")
    _write_atomically(files.json, snapshot.save_json)
    _write_atomically(files.html, snapshot.save_html)
    prune_reports(directory, model, keep)
    return files


def prune_reports(directory: Path, model: str, keep: int) -> list[Path]:
    """Remove all but the newest `keep` runs of this model; returns what was removed."""
    prefix = f"drift-{_UNSAFE.sub('_', model)}-"
    stems = sorted(
        {
            path.name.removesuffix(path.suffix)
            for path in directory.iterdir()
            if path.name.startswith(prefix)
            and path.suffix in {".json", ".html"}
            and _is_time(path.stem.removeprefix(prefix))
        }
    )
    removed: list[Path] = []
    for stem in stems[: max(0, len(stems) - keep)]:
        for suffix in (".json", ".html"):
            path = directory / f"{stem}{suffix}"
            if path.exists():
                path.unlink()
                removed.append(path)
    return removed


def _is_time(text: str) -> bool:
    try:
        datetime.strptime(text, _TIME_FORMAT)
    except ValueError:
        return False
    return True


def _write_atomically(path: Path, save: Any) -> None:
    partial = path.with_name(f".{path.name}.partial")
    try:
        save(str(partial))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
