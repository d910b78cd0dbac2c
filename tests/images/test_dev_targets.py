"""The Dockerfiles' dev targets, which only `tilt up` builds (app/Dockerfile and
operator/Dockerfile, target dev): they run as the images' numeric non-root user, their entry
points start, and that user can write into site-packages, where live update copies changed
Python files.
"""

from __future__ import annotations

import pytest

from .imagetools import IMAGE_USER, podman, podman_run

# Two cold builds of dev targets (the session fixture) take longer than the default timeout.
pytestmark = [pytest.mark.images, pytest.mark.slow, pytest.mark.timeout(3600)]

SITE_PACKAGES = "/opt/venv/lib/python3.11/site-packages"
# name -> the packages Tilt live-updates (the Tiltfile's sync() targets), and a word its
# entry point's --help prints.
LIVE_UPDATED = {"credit-api": ("credit_api", "prediction_store"), "operator": ("modelmonitor",)}
HELP_SAYS = {"credit-api": "serve", "operator": "render"}


def test_dev_targets_run_as_the_numeric_non_root_user(dev_images: dict[str, str]) -> None:
    for name, image in dev_images.items():
        inspected = podman("image", "inspect", "--format", "{{.Config.User}}", image)
        assert inspected.stdout.strip() == IMAGE_USER, name
        whoami = podman_run(image, "-u", options=("--entrypoint", "id"))
        assert whoami.stdout.strip() == "10001", (name, whoami.stderr)


def test_dev_target_entry_points_start(dev_images: dict[str, str]) -> None:
    for name, image in dev_images.items():
        helped = podman_run(image, "--help", options=("--read-only",))
        assert helped.returncode == 0, (name, helped.stderr)
        assert HELP_SAYS[name] in helped.stdout, (name, helped.stdout)


def test_dev_target_site_packages_are_writable_by_that_user(dev_images: dict[str, str]) -> None:
    for name, image in dev_images.items():
        # Nothing in site-packages that the user cannot write; and in each live-updated package
        # a file can be added, changed and removed, as Tilt's sync does.
        packages = " ".join(f"{SITE_PACKAGES}/{package}" for package in LIVE_UPDATED[name])
        script = (
            "set -e\n"
            f"find {SITE_PACKAGES} ! -writable | head -n 20\n"
            f"for d in {packages}; do\n"
            "  echo x = 1 > $d/live_update_probe.py; echo x = 2 >> $d/live_update_probe.py\n"
            "  rm $d/live_update_probe.py\n"
            "done\n"
        )
        probe = podman_run(image, "-c", script, options=("--entrypoint", "sh"))
        assert probe.returncode == 0, (name, probe.stderr)
        assert probe.stdout == "", f"{name}: not writable by the image's user:\n{probe.stdout}"
