"""The committed wrapper go.mod/go.sum files are exactly what the generator derives from the
published upstream go.mod files and versions.py (no hand edits, no stale staging list)."""

from __future__ import annotations

from pathlib import Path

import pytest

from localkube.build import ldflags
from localkube.errors import LocalkubeError
from localkube.gomod import GENERATED_FILES, download_go_mod, generate, staging_modules
from localkube.paths import go_modules_dir
from localkube.pytest_plugin import unavailable
from localkube.versions import HELM, KUBERNETES, WRAPPER_MODULES, WrapperModule, staging_version

pytestmark = pytest.mark.slow


def upstream(spec: WrapperModule) -> dict[str, object]:
    try:
        return download_go_mod(spec.upstream, spec.version)
    except (LocalkubeError, RuntimeError) as error:
        unavailable(f"cannot read {spec.upstream}@{spec.version} through Go: {error}")


@pytest.mark.parametrize("spec", WRAPPER_MODULES, ids=lambda s: s.directory)
def test_the_committed_wrapper_module_is_what_the_generator_writes(
    spec: WrapperModule, tmp_path: Path
) -> None:
    upstream(spec)  # skips (or fails in CI) with a clear message when Go cannot reach it
    generate(spec, tmp_path)
    committed = go_modules_dir() / spec.directory
    for name in GENERATED_FILES:
        assert (committed / name).read_text() == (tmp_path / name).read_text(), (
            f"hack/k8s/{spec.directory}/{name} is stale: run `localkube generate-go-modules`"
        )


def test_every_staging_module_is_replaced_by_its_published_release() -> None:
    staged = staging_modules(upstream(KUBERNETES))
    assert "k8s.io/api" in staged
    assert "k8s.io/apiserver" in staged
    go_mod = (go_modules_dir() / KUBERNETES.directory / "go.mod").read_text()
    published = staging_version(KUBERNETES.version)
    for module in staged:
        assert f"replace {module} => {module} {published}\n" in go_mod


def test_helm_assumes_the_kubernetes_version_the_control_plane_runs() -> None:
    upstream(HELM)
    minor = KUBERNETES.version.split(".")[1]
    flags = ldflags(HELM)
    assert f"-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor={minor}" in flags
    assert f"-X helm.sh/helm/v3/internal/version.version={HELM.version}" in flags
