"""What a wrapper module takes over from the upstream go.mod, and the version stamps of the
Prometheus-family builds: pure functions, no Go needed."""

from __future__ import annotations

import gzip
import re
from collections.abc import Sequence
from typing import Any

import pytest

from localkube.build import build_tags, ldflags
from localkube.errors import LocalkubeError
from localkube.gomod import carried_replaces, edit_arguments, nested_module_path
from localkube.gotool import go_env
from localkube.standins import ALERTMANAGER_UI_FILE, TILT_UI_FILE, digest, stand_in_files
from localkube.versions import (
    ALERTMANAGER,
    ETCD,
    KUBE_STATE_METRICS,
    PROMETHEUS,
    PROMETHEUS_OPERATOR,
    TILT,
    TILT_RELEASE_DATE,
    WRAPPER_MODULES,
    WrapperModule,
    prometheus_release,
)

OPERATOR = "github.com/prometheus-operator/prometheus-operator"


def go_mod(
    replaces: list[dict[str, Any]], excludes: Sequence[dict[str, str]] = ()
) -> dict[str, Any]:
    """The shape `go mod edit -json` prints."""
    return {"Go": "1.26.0", "Replace": replaces, "Exclude": list(excludes)}


def test_a_replace_by_another_module_version_is_carried_as_it_is() -> None:
    upstream = go_mod([
        {"Old": {"Path": "cloud.google.com/go"},
         "New": {"Path": "cloud.google.com/go", "Version": "v0.123.0"}},
        {"Old": {"Path": "example.test/a", "Version": "v1.0.0"},
         "New": {"Path": "example.test/fork", "Version": "v1.0.1"}},
    ])  # fmt: skip
    assert carried_replaces(PROMETHEUS, upstream) == [
        ("cloud.google.com/go", "cloud.google.com/go@v0.123.0"),
        ("example.test/a@v1.0.0", "example.test/fork@v1.0.1"),
    ]


def test_a_nested_module_replaced_by_its_folder_becomes_its_release_at_the_upstream_version() -> (
    None
):
    upstream = go_mod([
        {"Old": {"Path": f"{OPERATOR}/pkg/client"}, "New": {"Path": "./pkg/client"}},
    ])  # fmt: skip
    assert carried_replaces(PROMETHEUS_OPERATOR, upstream) == [
        (f"{OPERATOR}/pkg/client", f"{OPERATOR}/pkg/client@{PROMETHEUS_OPERATOR.version}")
    ]


@pytest.mark.parametrize("local_path", ["../elsewhere", "./third_party/forked", "/abs/path"])
def test_any_other_local_replace_cannot_be_carried_and_says_so(local_path: str) -> None:
    upstream = go_mod([{"Old": {"Path": "example.test/dep"}, "New": {"Path": local_path}}])
    with pytest.raises(
        LocalkubeError, match=re.escape(f"example.test/dep with the local path {local_path}")
    ):
        carried_replaces(PROMETHEUS_OPERATOR, upstream)


def test_nested_module_paths_stay_inside_the_upstream_repository() -> None:
    assert (
        nested_module_path(OPERATOR, "./pkg/apis/monitoring") == f"{OPERATOR}/pkg/apis/monitoring"
    )
    assert nested_module_path(OPERATOR, "pkg/client/") == f"{OPERATOR}/pkg/client"
    assert nested_module_path(OPERATOR, "./pkg/../..") is None
    assert nested_module_path(OPERATOR, ".") is None


def test_replaces_and_excludes_are_carried_only_when_asked() -> None:
    upstream = go_mod(
        [{"Old": {"Path": "a.test/x"}, "New": {"Path": "a.test/x", "Version": "v1.2.3"}}],
        [{"Path": "b.test/y", "Version": "v0.1.0"}],
    )
    carrying = edit_arguments(PROMETHEUS, upstream)
    assert "-replace=a.test/x=a.test/x@v1.2.3" in carrying
    assert "-exclude=b.test/y@v0.1.0" in carrying
    plain = edit_arguments(ETCD, upstream)
    assert not [a for a in plain if a.startswith(("-replace", "-exclude"))]


def test_prometheus_3_module_versions_map_to_their_releases() -> None:
    assert prometheus_release("v0.314.0") == "3.14.0"
    assert prometheus_release("v0.300.1") == "3.0.1"
    with pytest.raises(ValueError, match=r"not a Prometheus 3\.x module version"):
        prometheus_release("v0.54.1")  # Prometheus 2.54.1


@pytest.mark.parametrize(
    ("module", "version"),
    [
        # The operator's default config reloader image is ...:v<this>.
        (PROMETHEUS_OPERATOR, PROMETHEUS_OPERATOR.version.removeprefix("v")),
        (PROMETHEUS, prometheus_release(PROMETHEUS.version)),
        (ALERTMANAGER, ALERTMANAGER.version.removeprefix("v")),
        (KUBE_STATE_METRICS, KUBE_STATE_METRICS.version),  # its Makefile keeps the v
    ],
    ids=lambda value: value.directory if isinstance(value, WrapperModule) else value,
)
def test_prometheus_family_builds_stamp_their_release(module: WrapperModule, version: str) -> None:
    assert f"-X github.com/prometheus/common/version.Version={version}" in ldflags(module)


def test_only_prometheus_is_built_with_service_discovery_tags() -> None:
    assert build_tags(PROMETHEUS) == ("remove_all_sd", "enable_kubernetes_sd")
    assert build_tags(ALERTMANAGER) == ()


def test_only_alertmanager_and_tilt_need_stand_in_files() -> None:
    assert list(stand_in_files(ALERTMANAGER)) == [ALERTMANAGER_UI_FILE]
    # Tilt serves index.html for every page; without one, a release build refuses to start.
    assert list(stand_in_files(TILT)) == [TILT_UI_FILE]
    assert b"tilt get uiresources" in stand_in_files(TILT)[TILT_UI_FILE]
    assert stand_in_files(PROMETHEUS) == {}
    assert digest(ALERTMANAGER)
    assert digest(PROMETHEUS) == ""


def test_tilt_is_stamped_as_a_release_not_a_development_build() -> None:
    """A Tilt without a version calls itself a development build and looks for a yarn server."""
    flags = ldflags(TILT)
    assert f"-X main.version={TILT.version.removeprefix('v')}" in flags
    assert f"-X main.date={TILT_RELEASE_DATE}" in flags


def test_only_tilt_is_built_with_cgo_and_tidied_offline() -> None:
    assert [m.directory for m in WRAPPER_MODULES if m.cgo] == ["tilt"]
    assert [m.directory for m in WRAPPER_MODULES if m.tidy_offline] == ["tilt"]
    assert go_env(cgo=True)["CGO_ENABLED"] == "1"
    assert go_env()["CGO_ENABLED"] == "0"


def test_the_ui_placeholder_is_the_same_bytes_at_every_build() -> None:
    compressed = stand_in_files(ALERTMANAGER)[ALERTMANAGER_UI_FILE]
    assert compressed[4:8] == b"\0\0\0\0", "a gzip time stamp would change the build stamp"
    assert b"Alertmanager" in gzip.decompress(compressed)
