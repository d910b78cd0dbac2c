"""Fixtures for the image tests: the three images, and Tilt's live-update images, built once per
session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .imagetools import build_images, build_live_update_image, podman, require_podman


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    """name -> image reference, for credit-api, operator and drift."""
    require_podman()
    return build_images()


# The images Tilt deploys where it live-updates Python code (hack/tilt/image.sh: build.sh's image
# plus a layer), under names of their own -> the packages live update copies files into.
LIVE_UPDATED = {
    "credit-api": ("localhost/credit-api-tilt-test:test", ("credit_api", "prediction_store")),
    "operator": ("localhost/modelmonitor-operator-tilt-test:test", ("modelmonitor",)),
}


@pytest.fixture(scope="session")
def live_update_images(images: dict[str, str]) -> Iterator[dict[str, str]]:
    """name -> what Tilt deploys for credit-api and operator (on the images fixture's images,
    which build.sh then finds up to date); the names are removed after."""
    try:
        for name, (tag, packages) in LIVE_UPDATED.items():
            build_live_update_image(name, packages, tag)
        yield {name: tag for name, (tag, _) in LIVE_UPDATED.items()}
    finally:
        podman("rmi", *(tag for tag, _ in LIVE_UPDATED.values()))
