"""The installed wheel, used as a new user would (run by .ci/wheel-smoke in a fresh venv).

Checks: only `dalil` (and its dist-info) in the wheel; `dalil index` finds the bundled corpus;
`dalil search`; the Python API (the examples/ scripts); `dalil serve` with its page and docs, called
through `dalil.Client`. Exits non-zero with the reason on the first failure.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

WORK, EXAMPLES = Path(sys.argv[1]), Path(sys.argv[2])
BIN = Path(sys.executable).parent
TOKEN = "smoke-token"


def step(name: str) -> None:
    print(f"wheel smoke: {name}", flush=True)


def run(*args: str, **kwargs) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def check_wheel_names() -> None:
    (wheel,) = (WORK / "dist").glob("dalil-*.whl")
    tops = {name.split("/", 1)[0] for name in zipfile.ZipFile(wheel).namelist()}
    extra = {t for t in tops if t != "dalil" and not (t.startswith("dalil-") and t.endswith(".dist-info"))}
    assert not extra, f"the wheel installs more than `dalil`: {sorted(extra)}"
    import dalil

    installed = Path(dalil.__file__).parent
    assert "site-packages" in str(installed), f"dalil imported from {installed}, not the installed wheel"
    for needed in ("api/templates/search.html", "corpus/000_5e840d295c91c543.txt"):
        assert (installed / needed).is_file(), f"the wheel lacks {needed}"
    assert (WORK / "dist").glob("*.tar.gz").__next__() is not None  # the sdist was built too


def wait_ready(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/ready", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            if proc.poll() is not None:
                sys.exit(f"dalil serve exited:\n{proc.stdout.read()}")
            time.sleep(0.5)
    sys.exit("dalil serve did not become ready in 120 s")


def main() -> None:
    step("wheel contents")
    check_wheel_names()
    index = WORK / "index"
    step("dalil index (the bundled corpus)")
    out = run(str(BIN / "dalil"), "index", "--out", str(index), "--quiet")
    assert out.startswith("indexed 5 articles"), out
    step("dalil search")
    answer = json.loads(
        run(str(BIN / "dalil"), "search", "--index", str(index), "5G cooperation with Russia", "--json")
    )
    assert answer["results"][0]["article_id"] == "000_5e840d295c91c543", answer["results"][0]
    step("examples/python_api.py")
    import dalil

    corpus = Path(dalil.__file__).parent / "corpus"
    out = run(sys.executable, str(EXAMPLES / "python_api.py"), str(corpus), str(WORK / "example-index"))
    assert "add: ['example-1']" in out and "error: invalid_query" in out, out
    step("dalil serve + dalil.Client")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DALIL_WRITE_TOKEN": TOKEN}
    proc = subprocess.Popen(
        [str(BIN / "dalil"), "serve", "--index", str(index), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    try:
        wait_ready(url, proc)
        out = run(sys.executable, str(EXAMPLES / "client.py"), url, TOKEN)
        assert "add: ['example-1']" in out and "error 422 invalid_request: k:" in out, out
        for page, marker in (("/", "<form"), ("/openapi.json", '"openapi"')):
            with urllib.request.urlopen(url + page, timeout=10) as r:
                assert marker in r.read().decode(), f"{page} lacks {marker}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    step("passed")


if __name__ == "__main__":
    main()
