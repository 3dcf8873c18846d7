"""The `dalil` command: index, search, serve.

Exit codes: 0 success; 1 error (nothing was changed); 2 bad usage; 3 done, but some input records
were skipped (each one is reported on stderr with its file and line).

One module per command group (indexing, searching, evaluating, serving), each adding its
subcommands to the parser; `main` here maps every error to its exit code through dalil/errors.py's
table, the one table the API and the Python API read too.
"""

from __future__ import annotations

import argparse
import os
import sys

from dalil.api.cli import evaluating, indexing, searching, serving
from dalil.api.cli.common import EXIT_OK, EXIT_PARTIAL, configure_output
from dalil.api.paths import default_index_dir
from dalil.indexer.encoders.threads import apply_thread_limit, default_threads

from dalil.errors import EXIT_ERROR, EXIT_USAGE, DalilError, Error, kind_of

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_PARTIAL", "EXIT_USAGE", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dalil", description="Semantic search over Arabic tech news.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    parser.add_argument(
        "--threads",
        type=int,
        default=default_threads(),
        help="compute threads per process (default 1: these machines are shared)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    index_dir = str(default_index_dir())
    for group in (indexing, searching, evaluating, serving):
        group.add_commands(sub, index_dir)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_output(args.verbose)
    apply_thread_limit(args.threads)
    try:
        return args.func(args)
    except (DalilError, Error) as exc:  # one line, and the exit code of dalil/errors.py's table
        where = f"dalil {args.command}" if kind_of(exc.code).exit == EXIT_USAGE else "dalil"
        print(f"{where}: error: {exc.message}", file=sys.stderr)
        return kind_of(exc.code).exit
    except BrokenPipeError:  # the reader went away (`dalil search ... | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:
        print(f"dalil: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("dalil: interrupted; the live index was not changed", file=sys.stderr)
        return 130
