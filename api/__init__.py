"""The user-facing entry points over search/: the HTTP service (app.py) and the `dalil` command (cli.py)."""

import dalil.indexer  # noqa: F401 - sets the one-thread-per-process limits before FAISS or a model loads
