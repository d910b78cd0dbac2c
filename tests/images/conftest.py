"""Fixtures for the image tests: the three images, and the dev targets, built once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .imagetools import REPO, build_dev_target, build_images, podman, require_podman


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    """name -> image reference, for credit-api, operator and drift."""
    require_podman()
    return build_images()


# The Dockerfiles' dev targets, as Tilt builds them, under their own names (build.sh removes
# every other tag of its images' repositories).
DEV_TARGETS = {
    "credit-api": (REPO / "app/Dockerfile", "localhost/credit-api-dev-target:test"),
    "operator": (REPO / "operator/Dockerfile", "localhost/modelmonitor-operator-dev-target:test"),
}


@pytest.fixture(scope="session")
def dev_images() -> Iterator[dict[str, str]]:
    """name -> image reference of the dev target, for credit-api and operator; removed after."""
    require_podman()
    try:
        for name, (dockerfile, tag) in DEV_TARGETS.items():
            build_dev_target(name, dockerfile, tag)
        yield {name: tag for name, (_dockerfile, tag) in DEV_TARGETS.items()}
    finally:
        podman("rmi", "--force", *(tag for _dockerfile, tag in DEV_TARGETS.values()))
