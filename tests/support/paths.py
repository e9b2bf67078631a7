"""Where the shared test material lives.

CI clones the repository with ``shared/`` beside it, so the default is
``<repo>/../shared``; ``KES_SHARED_DIR`` overrides it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DIR = Path(os.environ.get("KES_SHARED_DIR", REPO_ROOT.parent / "shared"))
VECTORS_DIR = SHARED_DIR / "vectors"


def load_vectors(name: str) -> Any:
    """Load one JSON file of ../shared/vectors (never copied into the repo)."""
    with open(VECTORS_DIR / name, encoding="utf-8") as fh:
        return json.load(fh)
