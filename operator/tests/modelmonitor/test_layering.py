"""Import contracts: render/ and selection.py stay pure; the operator never loads the drift job."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import modelmonitor

PACKAGE = Path(modelmonitor.__file__).parent
FORBIDDEN_IN_RENDER = ("kopf", "kubernetes", "lightkube", "aiohttp", "httpx", "modelmonitor.kube")
NEVER_IN_OPERATOR = ("evidently", "pandas", "drift_job", "sklearn")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_render_and_selection_import_no_kopf_or_kubernetes_client() -> None:
    modules = [*sorted((PACKAGE / "render").glob("*.py")), PACKAGE / "selection.py"]
    assert modules
    for module in modules:
        for name in _imports(module):
            assert not name.startswith(FORBIDDEN_IN_RENDER), f"{module.name} imports {name}"


def test_operator_process_does_not_load_evidently_or_pandas() -> None:
    probe = (
        "import sys, modelmonitor.cli, modelmonitor.runner, modelmonitor.handlers;"
        f"print([m for m in sys.modules if m.split('.')[0] in {NEVER_IN_OPERATOR!r}])"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
