"""The user-facing entry points over search/: the HTTP service (app.py) and the `dalil` command (cli.py)."""
