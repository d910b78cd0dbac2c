"""The product's images, built here with hack/images/build.sh (an unchanged image is found by
its content hash and not built again)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

from demo.cluster import REPO_ROOT
from demo.podstack import DEFAULT_IMAGES_FILE, Images

BUILD_TIMEOUT = 3600.0  # a cold build of the three Python images takes minutes on 2 cores


class ImageBuildError(RuntimeError):
    """hack/images/build.sh failed; the message ends with its output."""


def build_images(*names: str, say: Callable[[str], None] = lambda _: None) -> dict[str, str]:
    """Build (or find) the named images; their references by name."""
    say(f"bash hack/images/build.sh {' '.join(names)}")
    completed = subprocess.run(
        ["bash", str(REPO_ROOT / "hack" / "images" / "build.sh"), *names],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    if completed.returncode != 0:
        raise ImageBuildError(
            f"hack/images/build.sh {' '.join(names)} failed:\n{completed.stderr[-4000:]}"
        )
    built: dict[str, str] = json.loads(DEFAULT_IMAGES_FILE.read_text())
    return {name: built[name] for name in names}


def local_node_images(say: Callable[[str], None] = lambda _: None) -> Images:
    """Every image the charts run on the local node, PostgreSQL's included."""
    built = build_images("credit-api", "operator", "drift", "postgres", say=say)
    return Images(
        credit_api=built["credit-api"],
        operator=built["operator"],
        drift=built["drift"],
        postgres=built["postgres"],
    )
