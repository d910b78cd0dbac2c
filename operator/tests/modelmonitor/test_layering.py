"""Import contracts: render/ and selection.py stay pure, render/ is layered, and no operator
module loads the drift stack.

The operator process stays small and starts fast (DESIGN.md): evidently, pandas and the drift job
belong to the drift job's own image.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import modelmonitor

PACKAGE = Path(modelmonitor.__file__).parent
FORBIDDEN_IN_RENDER = ("kopf", "kubernetes", "lightkube", "aiohttp", "httpx", "modelmonitor.kube")
NEVER_IN_OPERATOR = ("evidently", "pandas", "drift_job", "sklearn")


# One module per kind of child; the others are what the kinds share, or a part of one kind.
RENDER_KINDS = {"cronjob", "rbac", "prometheusrule", "dashboard"}
RENDER_SHARED = {"common", "promql", "reportlinks", "slo"}
KIND_PARTS = {
    "prometheusrule": {"model_alerts"},
    "dashboard": {"panels", "judgement_panels"},
}
PARTS = set().union(*KIND_PARTS.values())


def _imports(path: Path) -> set[str]:
    """Every module `path` imports; `from a import b` counts as both `a` and `a.b`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _render_modules() -> dict[str, set[str]]:
    """render/'s modules by short name, each with the render/ modules it imports."""
    modules = {path.stem: _imports(path) for path in (PACKAGE / "render").glob("*.py")}
    prefix = "modelmonitor.render."
    return {
        name: {
            imported.removeprefix(prefix).split(".")[0]
            for imported in found
            if imported.startswith(prefix)
        }
        for name, found in modules.items()
    }


def test_render_and_selection_import_no_kopf_or_kubernetes_client() -> None:
    modules = [*sorted((PACKAGE / "render").glob("*.py")), PACKAGE / "selection.py"]
    assert modules
    for module in modules:
        for name in _imports(module):
            assert not name.startswith(FORBIDDEN_IN_RENDER), f"{module.name} imports {name}"


def test_renderers_of_different_kinds_do_not_import_each_other() -> None:
    graph = _render_modules()
    assert set(graph) == RENDER_KINDS | RENDER_SHARED | PARTS | {"__init__"}, "a new module?"
    for kind in RENDER_KINDS:
        allowed = RENDER_SHARED | KIND_PARTS.get(kind, set())
        assert graph[kind] <= allowed, f"render/{kind}.py imports {graph[kind] - allowed}"
        for part in KIND_PARTS.get(kind, set()):
            assert graph[part] <= allowed, f"render/{part}.py imports {graph[part] - allowed}"
    for shared in RENDER_SHARED:
        assert not graph[shared] & (RENDER_KINDS | PARTS), f"render/{shared}.py imports a kind's"


def test_no_operator_module_loads_the_drift_stack() -> None:
    """Every module of the operator package, imported: none loads the drift job's stack."""
    probe = (
        "import importlib, pkgutil, sys, modelmonitor\n"
        "for module in pkgutil.walk_packages(modelmonitor.__path__, 'modelmonitor.'):\n"
        "    importlib.import_module(module.name)\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(NEVER_IN_OPERATOR)!r}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
