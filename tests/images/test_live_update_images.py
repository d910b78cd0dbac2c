"""What the Tiltfile deploys where it live-updates Python code (hack/tilt/image.sh): the image
users get plus a layer that gives the live-updated packages, and only those, to the image's
numeric non-root user. Its entry point starts, and the user can add, change and remove files in
those packages, as Tilt's sync does.
"""

from __future__ import annotations

import pytest

from .conftest import LIVE_UPDATED
from .imagetools import IMAGE_USER, podman, podman_run

pytestmark = [pytest.mark.images, pytest.mark.slow, pytest.mark.timeout(3600)]

SITE_PACKAGES = "/opt/venv/lib/python3.11/site-packages"
HELP_SAYS = {"credit-api": "serve", "operator": "render"}


def test_they_run_as_the_numeric_non_root_user(live_update_images: dict[str, str]) -> None:
    for name, image in live_update_images.items():
        inspected = podman("image", "inspect", "--format", "{{.Config.User}}", image)
        assert inspected.stdout.strip() == IMAGE_USER, name
        whoami = podman_run(image, "-u", options=("--entrypoint", "id"))
        assert whoami.stdout.strip() == "10001", (name, whoami.stderr)


def test_their_entry_points_start(live_update_images: dict[str, str]) -> None:
    for name, image in live_update_images.items():
        helped = podman_run(image, "--help", options=("--read-only",))
        assert helped.returncode == 0, (name, helped.stderr)
        assert HELP_SAYS[name] in helped.stdout, (name, helped.stdout)


def test_only_the_live_updated_packages_are_writable_by_that_user(
    live_update_images: dict[str, str],
) -> None:
    for name, image in live_update_images.items():
        _, packages = LIVE_UPDATED[name]
        folders = " ".join(f"{SITE_PACKAGES}/{package}" for package in packages)
        # In each live-updated package a file can be added, changed and removed; the user can
        # write nowhere else in the virtualenv (the third-party packages stay root's).
        script = (
            "set -e\n"
            f"for d in {folders}; do\n"
            "  echo x = 1 > $d/live_update_probe.py; echo x = 2 >> $d/live_update_probe.py\n"
            "  rm $d/live_update_probe.py\n"
            "  find $d ! -writable | head -n 5\n"
            "done\n"
            "find /opt/venv -writable | grep -v -E '^("
            + "|".join(f"{SITE_PACKAGES}/{package}" for package in packages)
            + ")(/|$)' | head -n 5\n"
        )
        probe = podman_run(image, "-c", script, options=("--entrypoint", "sh"))
        assert probe.returncode == 0, (name, probe.stderr)
        assert probe.stdout == "", f"{name}: unexpected permissions:\n{probe.stdout}"
