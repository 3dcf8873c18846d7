"""`import dalil` (and its packages) changes nothing in the process; the entry points set the
one-thread-per-process limits before FAISS or a model loads, and a user's own exports win."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPO

LIMITS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY")


def _run(code: str, **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in LIMITS and k != "DALIL_THREADS"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


REPORT = (
    "import json, os, sys; print(json.dumps({'env': {k: os.environ.get(k) for k in LIMITS},"
    " 'faiss': 'faiss' in sys.modules, 'numpy': 'numpy' in sys.modules}))"
).replace("LIMITS", repr(LIMITS))


def test_importing_dalil_and_its_packages_sets_nothing():
    found = _run(
        "import dalil, dalil.indexer, dalil.search, dalil.api, dalil.indexer.store, dalil.search.searcher, "
        "dalil.api.app; " + REPORT
    )
    assert found["env"] == dict.fromkeys(LIMITS)


def test_import_dalil_loads_no_engine():
    found = _run("import dalil; " + REPORT)
    assert found["faiss"] is False and found["numpy"] is False


def test_the_cli_sets_the_limits_before_running_a_command(tmp_path):
    found = _run(
        "import contextlib, io, sys; from dalil.api.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()): main(['check', '--index', 'nowhere'])\n" + REPORT
    )
    assert found["env"] == {**dict.fromkeys(LIMITS, "1"), "OMP_WAIT_POLICY": "PASSIVE"}


def test_the_python_api_sets_the_defaults_and_keeps_a_user_s_own(seed_index):
    opening = f"import dalil\nwith dalil.open_index({str(seed_index)!r}) as index: pass\n"
    found = _run(opening + REPORT)
    assert found["env"] == {**dict.fromkeys(LIMITS, "1"), "OMP_WAIT_POLICY": "PASSIVE"}
    own = _run(opening + REPORT, OMP_NUM_THREADS="2")
    assert own["env"]["OMP_NUM_THREADS"] == "2" and own["env"]["OPENBLAS_NUM_THREADS"] == "1"


def test_the_python_api_applies_the_limit_to_faiss_already_loaded(seed_index):
    found = _run(
        "import json, faiss, dalil\n"  # FAISS loaded before dalil: its OpenMP read no limit
        f"with dalil.open_index({str(seed_index)!r}) as index: pass\n"
        "print(json.dumps({'n': faiss.omp_get_max_threads()}))"
    )
    assert found == {"n": 1}
