"""Headless Chromium, cut off from the network: a page's DOM once its scripts ran, or a picture.

Every request goes to a dead proxy and every name fails to resolve, except 127.0.0.1 when a
test serves the page from loopback: what renders came from the file or the local server alone.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from localservers import binaries

WIDTH, HEIGHT = 1400, 2200


def chromium(
    url: str,
    profile: Path,
    *mode: str,
    window: tuple[int, int] = (WIDTH, HEIGHT),
    budget_ms: int = 15_000,
) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium on `url` with `mode` (`--dump-dom`, `--screenshot=PATH`)."""
    return subprocess.run(
        [
            str(binaries.require("chromium")),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            # Offline: every request goes to a closed port, every name fails to resolve.
            "--proxy-server=http://127.0.0.1:9",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            # Let the page's scripts run (virtual time) before the dump or the screenshot.
            f"--virtual-time-budget={budget_ms}",
            f"--window-size={window[0]},{window[1]}",
            *mode,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )


def visible_text(dom: str) -> str:
    """The text a person sees in a dumped DOM: no scripts or styles, whitespace collapsed."""
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.DOTALL)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from a PNG's header; raises ValueError if it is not a PNG."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


# One row of Evidently's data drift table as its page shows it: column, type, verdict, test, score.
_DRIFT_ROW = re.compile(
    r"(\w+) (cat|num) (Not Detected|Detected) (.+?) (\d+(?:\.\d+)?(?:e-?\d+)?) "
)


@dataclass(frozen=True)
class DriftRow:
    column: str
    drifted: bool
    stattest: str
    score: float


def drift_table_rows(text: str) -> list[DriftRow]:
    """The rows of the data drift table on the page's first page of it (10 columns)."""
    return [
        DriftRow(column, verdict == "Detected", stattest, float(score))
        for column, _, verdict, stattest, score in _DRIFT_ROW.findall(text)
    ]
