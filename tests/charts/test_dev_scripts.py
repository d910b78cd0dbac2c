"""`make dev` on a machine that lacks its tools says which ones, before touching anything."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .charttools import REPO


def test_make_dev_names_every_missing_tool(tmp_path: Path) -> None:
    # A PATH with only what the script itself runs before its check.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname"):
        found = shutil.which(tool)
        assert found is not None
        os.symlink(found, bin_dir / tool)
    completed = subprocess.run(
        [str(bin_dir / "bash"), str(REPO / "hack/kind/dev-up.sh")],
        capture_output=True,
        text=True,
        env={"PATH": str(bin_dir), "HOME": str(tmp_path)},
        check=False,
        timeout=60,
    )
    assert completed.returncode == 1
    assert completed.stderr.strip() == (
        "make dev needs: docker kind kubectl helm tilt uv "
        "(see docs/kind.md for how to install them)"
    )
