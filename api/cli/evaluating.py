"""`dalil eval`: relevance on labelled question sets, through the same answer path the API uses
(search/evaluation.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dalil.api.cli.common import (
    EXIT_OK,
    CliError,
    UsageError,
    add_model_options,
    encoder_spec,
    planned_spec,
    positive_int,
)
from dalil.api.paths import (
    default_eval_cache,
    default_eval_dir,
    default_news_corpus,
    default_pasted_corpus,
    written_questions_dir,
)


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
    from dalil.search.evaluation import half_of
    from dalil.search.searcher import SearchOptions

    for q in negatives:
        answer = searcher.answer(q.query, SearchOptions(k=10))
        rows.add(model_language(answer.parsed.text), half_of(q), False, answer.confidence.value)


def cmd_eval(args: argparse.Namespace) -> int:
    from dalil.indexer.build import cached_build, plan_engine
    from dalil.indexer.encoders.engines import load_encoder
    from dalil.search.confidence import MODELS, model_language
    from dalil.search.evaluation import (
        VIEWS,
        ConfidenceRows,
        evaluate,
        format_halves,
        format_table,
        half_of,
        half_sizes,
    )
    from dalil.search.searcher import MODES, Searcher, validate_mode

    modes = [validate_mode(m.strip()) for m in args.modes.split(",")] if args.modes else list(MODES)
    sets = _labelled_sets(args)
    negatives = _unanswerable(args)
    confidence, judged = ConfidenceRows({}), set()
    encoder = load_encoder(encoder_spec(args))
    indexers: dict[str, object] = {args.model: encoder}
    rows: dict[str, list] = {view: [] for view in VIEWS}
    half_rows: dict[str, list] = {view: [] for view in VIEWS}
    empty: dict[str, dict] = {view: {} for view in VIEWS}
    sizes, report = {}, {}
    for lset in sets:
        index_dir = Path(args.index) if args.index else None
        if index_dir is None:  # built the way `dalil index` would build this corpus
            plan = plan_engine(args.index_model, len(lset.articles), args.workers)
            spec = planned_spec(args, plan)
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


def add_commands(sub, index_dir: str) -> None:
    """This group's subcommands, on the `dalil` parser."""
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
    p.add_argument("--workers", type=positive_int, default=None, help="embedding processes for those builds")
    add_model_options(p, "e5-fast")
    p.set_defaults(func=cmd_eval)
