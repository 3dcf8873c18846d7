"""`dalil search`, `related`, `suggest`: questions asked of an index through search/'s one answer
path (`Searcher.answer`), printed for people or as JSON."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

from dalil.api.cli.common import (
    EXIT_OK,
    EXIT_PARTIAL,
    CliError,
    UsageError,
    add_model_options,
    counted,
    encoder_spec,
    positive_float,
    result_count,
)
from dalil.search.options import DEFAULT_OPTIONS, MAX_K, MODES, SORTS


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
    from dalil.search.searcher import Searcher

    if (args.question is None) == (args.queries is None):
        raise UsageError("give one QUESTION or --queries FILE.jsonl")
    if args.question is not None and not args.question.strip():
        raise UsageError("the question is empty")
    with contextlib.closing(Searcher.open(Path(args.index), _search_model(args))) as searcher:
        if args.question is None:
            return _search_batch(searcher, args)
        answer = _answer(searcher, args)
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


def _answer(searcher, args: argparse.Namespace):
    """One question through the engine's one answer path, as the API asks it (grouping, date order,
    facets as the options say)."""
    from dalil.search.searcher import SearchOptions

    options = SearchOptions(
        k=args.k,
        mode=args.mode,
        group=args.group,
        collapse=not args.no_collapse,
        sort=args.sort,
        recency=args.recency,
        facets=args.facets,
    )
    return searcher.answer(args.question, options)


def _undated_note(undated: int) -> str:
    return f"; {counted(undated, 'undated result')} listed last" if undated else ""


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
    from dalil.search.searcher import Searcher

    with contextlib.closing(Searcher.open(Path(args.index), _search_model(args))) as searcher:
        found = searcher.related(args.article_id, args.k)
    if found is None:
        raise CliError(f"no article with id {args.article_id!r} in {args.index}")
    if args.json:
        print(json.dumps(found.to_dict(), ensure_ascii=False))
        return EXIT_OK
    print(f"{counted(len(found.related), 'related article')} for: {found.title} ({found.article_id})\n")
    for dup in found.same_story:
        where = " · ".join(x for x in (dup["article_id"], dup["source"], dup["date"]) if x)
        print(f"   = same story: {dup['title']} ({where})")
    for group in found.related:
        meta = " · ".join(x for x in (group.article_id, group.source, group.date) if x)
        print(f"{group.rank:>2}. [{group.score:.3f}] {group.title}\n    {meta}")
    return EXIT_OK


def cmd_suggest(args: argparse.Namespace) -> int:
    from dalil.api.errors import translated
    from dalil.indexer.store import IndexReader
    from dalil.search.searcher import Searcher

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
    from dalil.indexer.store import index_metadata

    if args.model:
        return encoder_spec(args)
    if args.queries is not None:
        return None
    return quick_start_spec(index_metadata(Path(args.index))["encoder"])


def _search_batch(searcher, args: argparse.Namespace) -> int:
    """`--queries FILE`: one JSON line out per line in; a bad line is answered with its error."""
    from dalil.search.searcher import QueryError, SearchOptions

    failures = 0
    for lineno, qid, query, error in _read_query_lines(args.queries):
        if error is None:
            try:
                hits = searcher.answer(query, SearchOptions(k=args.k, mode=args.mode)).results  # type: ignore[arg-type]
                print(json.dumps({"id": qid, "results": [h.to_dict() for h in hits]}, ensure_ascii=False))
                continue
            except QueryError as exc:
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
    print(f"{counted(len(hits), 'result')} for: {question}\n")
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


def _print_groups(question: str, groups: list) -> None:
    print(f"{counted(len(groups), 'article')} for: {question}\n")
    for group in groups:
        meta = " · ".join(x for x in (group.article_id, group.source, group.date) if x)
        _print_entry(
            group.rank,
            group.score,
            group.title,
            f"{meta} · {counted(1 + len(group.passages), 'matching passage')}",
            group.best.text,
            max_lines=3,
        )
        for dup in group.duplicates:
            where = " · ".join(x for x in (dup["article_id"], dup["source"], dup["date"]) if x)
            print(f"    = same story: {dup['title']} ({where})")
        print()


def add_commands(sub, index_dir: str) -> None:
    """This group's subcommands, on the `dalil` parser."""
    p = sub.add_parser("search", help="ask a question")
    p.add_argument("question", nargs="?", help="the question, Arabic or English")
    p.add_argument("--queries", help='batch mode: a JSONL file (\'-\' for stdin) of {"id":..., "query":...}')
    p.add_argument("--index", default=index_dir, help=f"index directory (default: {index_dir})")
    p.add_argument(
        "-k",
        type=result_count,
        default=DEFAULT_OPTIONS.k,
        help=f"number of results, 1 to {MAX_K} (default {DEFAULT_OPTIONS.k})",
    )
    p.add_argument("--json", action="store_true", help="JSON output (batch mode always writes JSON lines)")
    p.add_argument(
        "--mode",
        choices=MODES,
        default=DEFAULT_OPTIONS.mode,
        help="hybrid (default): dense and lexical fused by question language",
    )
    p.add_argument("--group", action="store_true", help="one result per article, best passage first")
    p.add_argument(
        "--no-collapse", action="store_true", help="with --group: keep near-duplicate stories apart"
    )
    p.add_argument(
        "--sort",
        choices=SORTS,
        default=DEFAULT_OPTIONS.sort,
        help="newest: the matching results (holding at least half the question's words) by date",
    )
    p.add_argument(
        "--recency",
        type=positive_float,
        default=None,
        metavar="DAYS",
        help="prefer recent stories: a half-life in days (relevance ×0.75 at that age, ×0.5 at most)",
    )
    p.add_argument("--facets", action="store_true", help="article counts by source, category and month")
    add_model_options(p, None, indexing=False)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("related", help="articles related to one article")
    p.add_argument("article_id", metavar="ID")
    p.add_argument("--index", default=index_dir, help=f"index directory (default: {index_dir})")
    p.add_argument("-k", type=result_count, default=5, help="related articles wanted (default 5, at most 50)")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(func=cmd_related, model=None, queries=None)

    p = sub.add_parser("suggest", help="complete a typed prefix from the index's headlines")
    p.add_argument("prefix")
    p.add_argument("--index", default=index_dir, help=f"index directory (default: {index_dir})")
    p.add_argument("-k", type=result_count, default=8, help="suggestions wanted (default 8, at most 20)")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(func=cmd_suggest)
