"""What every bench script starts with: the repository on sys.path (so a script runs from a fresh
checkout), where the shared data sets are, and single-threaded BLAS where a script measures its own
threading. Import it before numpy: ``import benchlib`` (the script's folder is on sys.path)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# The read-only data sets (lfw/, lag-dev/, photo-formats/, ...): $FACENET_PHOTOS_DATA, else the
# shared/data folder beside the repository.
SHARED_DATA = Path(os.environ.get("FACENET_PHOTOS_DATA") or REPO.parent / "shared" / "data")
LFW = SHARED_DATA / "lfw"


def pin_blas_threads(n: int = 1) -> None:
    """One BLAS / OpenMP thread per process (call before numpy is imported): the scripts that
    compare thread counts or run worker pools set their parallelism themselves."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(n))
