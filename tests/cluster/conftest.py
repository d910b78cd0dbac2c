"""The cluster tests import their helpers from sessiontools, beside this file."""

from __future__ import annotations

import sys
from pathlib import Path

# --import-mode=importlib does not put test folders on sys.path.
sys.path.insert(0, str(Path(__file__).parent))
