"""Preprocess one chunk for one variant into a Megatron indexed dataset, and merge a variant's chunks.

Edited token ids are written as ids: nothing is decoded and re-tokenized, which would undo the edits.

A chunk is read and cut into batches in this process; each batch is tokenized and edited by one of
`workers` (a thread beside the reader for one, else that many processes), and the results are written in
input order. A batch draws from its own random stream, seeded by (experiment seed, variant, chunk, batch
index), and batches end where `data.batch_size` / `data.batch_chars` say, whatever the number of workers:
so one worker and thirty-two write the same bytes.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from morphcpt.config import Experiment, PatokVariant, StochastokVariant, VanillaVariant
from morphcpt.context import Layout
from morphcpt.data.corpus import DEFAULT_MAX_DOCUMENT_BYTES, Rejected, read_records
from morphcpt.data.indexed import merge_prefixes, prefix_files, token_dtype, write_documents
from morphcpt.data.markers import (
    atomic_output,
    file_sha256,
    read_valid_marker,
    remove_marker,
    write_marker,
)
from morphcpt.data.processors import EditCounts, Processor, expansion_record, make_processor
from morphcpt.data.seeds import task_rng
from morphcpt.data.split import chunk_name, source_lines
from morphcpt.data.tokenizer import Tokenizer, load_tokenizer
from morphcpt.errors import MorphcptError
from morphcpt.languages import get_language
from morphcpt.progress import Reporter, task_reporter
from morphcpt.stages.preprocess import preprocess_settings

DEFAULT_CACHE = Path(".cache/morphcpt")
DEFAULT_PROGRESS_INTERVAL = 30.0  # seconds between progress lines in the log
# The profile's ncpus for the stage as the job prologue exports it (any scheduler, inside containers, and on
# the local profile where tasks share one machine); else how each scheduler states the CPUs it gave the job:
# PBS Pro, Slurm (with --cpus-per-task, as our header writes), Grid Engine (slots of -pe).
ALLOCATED_CPUS_VARIABLES = ("MORPHCPT_NCPUS", "NCPUS", "SLURM_CPUS_PER_TASK", "NSLOTS")
T = TypeVar("T")
R = TypeVar("R")
Variant = VanillaVariant | StochastokVariant | PatokVariant


def chunk_prefix(experiment: Experiment, variant: str, chunk: int) -> Path:
    return Layout(experiment).chunk_prefix(variant, chunk)


def merged_prefix(experiment: Experiment, variant: str) -> Path:
    return Layout(experiment).merged_prefix(variant)


def default_workers() -> int:
    """The CPUs this task may use: the scheduler's count of the job's CPUs where it states one, never more
    than the CPUs this process can run on (a node shared without cpusets lets a job see them all)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    for name in ALLOCATED_CPUS_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return min(int(value), usable)
    return usable


def _readable_checksum(path: Path) -> str:
    try:
        return file_sha256(path)
    except OSError as exc:
        raise MorphcptError(f"cannot read {path}: {exc.strerror or exc}") from None


def _check_request(experiment: Experiment, variant: str, chunk: int) -> Path:
    if variant not in experiment.variants:
        raise MorphcptError(f"unknown variant {variant!r}; the experiment has {', '.join(experiment.variants)}")
    if not 1 <= chunk <= experiment.data.num_chunks:
        raise MorphcptError(f"chunk {chunk} is outside 1-{experiment.data.num_chunks} (data.num_chunks)")
    path = Path(experiment.data.chunks_dir) / chunk_name(chunk)
    if not path.exists():
        raise MorphcptError(f"{path} not found; run the split stage first (morphcpt split)")
    return path


def _chunk_lines(experiment: Experiment, chunk: int, sha256: str) -> int | None:
    """The chunk's line count as the split recorded it, when the chunk is still the one it wrote (for the
    progress total: counting the lines would read the chunk twice)."""
    try:
        manifest = json.loads(Layout(experiment).split_manifest.read_text(encoding="utf-8"))
        entry = next(c for c in manifest["chunks"] if c["file"] == chunk_name(chunk))
        return int(entry["lines"]) if entry.get("sha256") == sha256 else None
    except (OSError, ValueError, KeyError, TypeError, StopIteration):
        return None


def prefetched(pool: Executor, function: Callable[[T], R], items: Iterable[T], ahead: int = 1) -> Iterator[R]:
    """function(item) for each item, in order, with up to `ahead` later items already running in `pool`
    (a bounded window: memory stays flat however long `items` is)."""
    pending: deque[Future[R]] = deque()
    for item in items:
        pending.append(pool.submit(function, item))
        if len(pending) > ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


@dataclass(frozen=True)
class TextBatch:
    index: int  # from 0, in chunk order: with the task's seed, it seeds the batch's random stream
    texts: list[str]
    last_line: int  # the chunk line of its last document


@dataclass(frozen=True)
class EditedBatch:
    tokens: np.ndarray  # the batch's edited documents end to end, each ending with the end-of-document id
    lengths: np.ndarray  # tokens of each document, its end-of-document id included
    edits: EditCounts
    text_bytes: int  # UTF-8 bytes of its texts (for MB/s)
    last_line: int


class BatchEditor:
    """Tokenizes and edits one batch; the same in the reader's thread and in a worker process."""

    def __init__(self, tokenizer: Tokenizer, processor: Processor, seed: tuple[object, ...]) -> None:
        self.tokenizer, self.processor, self.seed = tokenizer, processor, seed
        # The dataset's own dtype (uint16 below 65,500 tokens): results cross from a worker at that size.
        self.dtype = token_dtype(tokenizer.vocab_size)
        self.eod = np.asarray([tokenizer.eod_id], dtype=np.int64)

    def __call__(self, batch: TextBatch) -> EditedBatch:
        # Its own stream: the draws do not depend on which worker edits the batch or on what the batches
        # before it drew.
        rng = task_rng(*self.seed, batch.index)
        encoded = [np.asarray(ids, dtype=np.int64) for ids in self.tokenizer.encode_batch(batch.texts)]
        edited, edits = self.processor.process_batch(encoded, rng)
        tokens = np.concatenate([part for ids in edited for part in (ids, self.eod)]).astype(self.dtype)
        lengths = np.fromiter((len(ids) + 1 for ids in edited), dtype=np.int64, count=len(edited))
        text_bytes = sum(len(text.encode("utf-8")) for text in batch.texts)
        return EditedBatch(tokens, lengths, edits, text_bytes, batch.last_line)


@dataclass(frozen=True)
class EditorSpec:
    """What a worker process needs to build the task's BatchEditor: plain values, so that it pickles."""

    tokenizer: str
    tokenizer_fingerprint: str
    variant: Variant
    language: str
    cache_dir: Path
    seed: tuple[object, ...]  # (experiment seed, variant, chunk)

    def build(self) -> BatchEditor:
        tokenizer = load_tokenizer(self.tokenizer)
        if tokenizer.fingerprint != self.tokenizer_fingerprint:
            raise MorphcptError(f"tokenizer {self.tokenizer} changed while the chunk was being preprocessed")
        processor = make_processor(self.variant, tokenizer, self.cache_dir, language=self.language)
        return BatchEditor(tokenizer, processor, self.seed)


_worker_spec: EditorSpec | None = None
_worker_editor: BatchEditor | None = None


def _exit_with_parent(parent: int) -> None:
    # A worker blocks on its task queue forever if the task is SIGKILLed: go with it instead.
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _start_worker(spec: EditorSpec) -> None:
    global _worker_spec
    # One core per worker: the tokenizer's own thread pool would put N x cores threads on N cores.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    _worker_spec = spec


def _edit_in_worker(batch: TextBatch) -> EditedBatch:
    global _worker_editor
    if _worker_editor is None:
        # Built at the first batch rather than in the initializer, so that an error reaches the task
        # with its own message instead of as a broken pool.
        assert _worker_spec is not None
        _worker_editor = _worker_spec.build()
    return _worker_editor(batch)


def _duration(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class ChunkProgress:
    """How far a chunk is: a log line at most every `interval` seconds (documents, tokens, MB/s of text,
    ETA), as Megatron's preprocess_data.py prints one every few documents, and the task's report for
    `morphcpt status`. A line counts as a document whether it is kept or rejected."""

    def __init__(
        self, label: str, total: int | None, interval: float, log: Callable[[str], None] | None, reporter: Reporter
    ) -> None:
        self.label, self.total, self.interval, self.log, self.reporter = label, total, interval, log, reporter
        self.start = self.logged = time.monotonic()
        self.lines = self.tokens = self.text_bytes = 0

    def line(self, rejected: int, final: bool = False) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        done = f"{self.lines:,}/{self.total:,}" if self.total else f"{self.lines:,}"
        rejects = f" ({rejected:,} rejected)" if rejected else ""
        speed = f"{self.text_bytes / elapsed / 1e6:.2f} MB/s"
        if final:
            when = f"in {_duration(elapsed)}"
        elif self.total and self.lines:
            when = f"ETA {_duration(max(self.total - self.lines, 0) * elapsed / self.lines)}"
        else:
            when = "ETA unknown"
        return f"[preprocess] {self.label}: {done} documents{rejects}, {self.tokens:,} tokens, {speed}, {when}"

    def update(self, batch: EditedBatch, rejected: int) -> None:
        self.lines = batch.last_line
        self.tokens += len(batch.tokens)
        self.text_bytes += batch.text_bytes
        self.reporter.update(self.lines)
        if self.log is not None and time.monotonic() - self.logged >= self.interval:
            self.log(self.line(rejected))
            self.logged = time.monotonic()

    def finish(self, lines: int, rejected: int) -> None:
        self.lines = lines
        self.reporter.update(lines, total=lines)
        self.reporter.finish()
        if self.log is not None:
            self.log(self.line(rejected, final=True))


def preprocess_chunk(
    experiment: Experiment,
    variant: str,
    chunk: int,
    strict: bool = False,
    cache_dir: Path = DEFAULT_CACHE,
    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
    workers: int = 1,
    progress_interval: float = DEFAULT_PROGRESS_INTERVAL,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Preprocess `chunk` with `workers` workers (the output does not depend on how many); `log` gets a
    progress line every `progress_interval` seconds and one at the end."""
    if workers < 1:
        raise MorphcptError(f"workers must be at least 1, not {workers}")
    chunk_path = _check_request(experiment, variant, chunk)
    language = get_language(experiment.language)  # an unknown language fails even where the chunk is done
    prefix = chunk_prefix(experiment, variant, chunk)
    bin_path, idx_path = prefix_files(prefix)
    rejects_path = prefix.with_name(prefix.name + ".rejects.jsonl")
    tokenizer = load_tokenizer(experiment.data.tokenizer)
    parameters = {
        # The configured settings, defined once with the stage (the controller checks the same ones) ...
        **preprocess_settings(experiment, variant),
        # ... and what only the job can compute or is given. Not the number of workers: it changes nothing.
        "chunk_sha256": _readable_checksum(chunk_path),
        "tokenizer_fingerprint": tokenizer.fingerprint,
        "strict": strict,
        "max_document_bytes": max_document_bytes,
    }
    done = read_valid_marker(prefix, [bin_path, idx_path, rejects_path], parameters)
    if done is not None:
        return {**done, "skipped": True}
    remove_marker(prefix)
    # Built here whatever the number of workers: this builds and caches the split table once, before the
    # workers load it (else each of them would build it at once).
    processor = make_processor(experiment.variants[variant], tokenizer, cache_dir, language=language)
    seed = (experiment.seed, variant, chunk)
    rejects: list[Rejected] = []
    edits = EditCounts()
    lines = 0
    total = _chunk_lines(experiment, chunk, parameters["chunk_sha256"])
    progress = ChunkProgress(
        f"{variant} chunk {chunk}", total, progress_interval, log, task_reporter(chunk, "documents", total)
    )

    def text_batches() -> Iterator[TextBatch]:
        nonlocal lines
        batch: list[str] = []
        chars = 0
        index = 0
        for item in read_records(chunk_path, experiment.data.text_key, max_document_bytes):
            lines += 1
            if isinstance(item, Rejected):
                if strict:
                    source = source_lines(chunk_path, {item.line}).get(item.line)
                    where = f" ({experiment.data.corpus}:{source})" if source else ""
                    raise MorphcptError(f"{chunk_path}:{item.line}{where}: {item.reason} {item.detail}".rstrip())
                rejects.append(item)
                continue
            batch.append(item.text)
            chars += len(item.text)
            # Where a batch ends depends on the chunk and the settings only, never on the workers.
            if len(batch) >= experiment.data.batch_size or chars >= experiment.data.batch_chars:
                yield TextBatch(index, batch, item.line)
                batch, chars, index = [], 0, index + 1
        if batch:
            yield TextBatch(index, batch, lines)

    def documents(pool: Executor, edit: Callable[[TextBatch], EditedBatch]) -> Iterator[np.ndarray]:
        # Up to two batches per worker in flight: enough to keep every worker busy while this process
        # reads and writes, few enough that memory does not grow with the chunk.
        for edited in prefetched(pool, edit, text_batches(), ahead=2 * workers):
            edits.add(edited.edits)
            ends = np.cumsum(edited.lengths)
            for start, end in zip(ends - edited.lengths, ends, strict=True):
                yield edited.tokens[start:end]
            progress.update(edited, len(rejects))

    def write(pool: Executor, edit: Callable[[TextBatch], EditedBatch]) -> tuple[int, int]:
        try:
            return write_documents(prefix, documents(pool, edit), tokenizer.vocab_size)
        except BrokenProcessPool:
            # A worker's own error would have come back as that error: this one was killed, or could not start
            # (its traceback, if any, is above).
            raise MorphcptError(
                f"a preprocess worker of {variant} chunk {chunk} stopped abruptly (killed for its memory?): "
                "give the preprocess stage more mem in the cluster profile, or use fewer --workers"
            ) from None
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    try:
        if workers == 1:
            # The tokenizer releases the GIL: the next batch is tokenized and edited in a second thread
            # while this one reads the chunk and writes.
            docs, tokens = write(ThreadPoolExecutor(max_workers=1), BatchEditor(tokenizer, processor, seed))
        else:
            spec = EditorSpec(
                experiment.data.tokenizer,
                tokenizer.fingerprint,
                experiment.variants[variant],
                experiment.language,
                cache_dir,
                seed,
            )
            del processor  # the workers have their own
            # spawn, not fork: this process may hold the tokenizer's and torch's threads, which a fork
            # would copy in an unknown state.
            pool = ProcessPoolExecutor(workers, get_context("spawn"), initializer=_start_worker, initargs=(spec,))
            docs, tokens = write(pool, _edit_in_worker)
        sources = source_lines(chunk_path, {r.line for r in rejects})
        with atomic_output(rejects_path) as tmp, tmp.open("w", encoding="utf-8") as handle:
            for r in rejects:
                record = {"line": r.line, "reason": r.reason, "detail": r.detail}
                if r.line in sources:
                    # The chunk is an interleaving of the corpus: name the corpus line too.
                    record["source"] = f"{experiment.data.corpus}:{sources[r.line]}"
                handle.write(json.dumps(record) + "\n")
        if docs + len(rejects) != lines:
            raise MorphcptError(f"{chunk_path}: {lines} lines but {docs} written + {len(rejects)} rejected")
        facts = {
            "lines": lines,
            "documents": docs,
            "tokens": tokens,
            "rejected": len(rejects),
            "rejects_by_reason": dict(sorted(Counter(r.reason for r in rejects).items())),
            "edits": edits.as_dict(),
            # Which definition of expand_prop made these edits and what it realised (None for vanilla).
            "expansion": expansion_record(experiment.variants[variant], edits.as_dict()),
        }
        write_marker(prefix, [bin_path, idx_path, rejects_path], parameters, **facts)
    except OSError as exc:
        # Outputs renamed before the failure stay without a marker, so nothing looks complete.
        raise MorphcptError(f"cannot write {prefix}: {exc.strerror or exc}") from None
    progress.finish(lines, len(rejects))
    return {"parameters": parameters, **facts, "skipped": False}


def merge_variant(experiment: Experiment, variant: str) -> dict[str, Any]:
    if variant not in experiment.variants:
        raise MorphcptError(f"unknown variant {variant!r}; the experiment has {', '.join(experiment.variants)}")
    prefixes = [chunk_prefix(experiment, variant, i) for i in range(1, experiment.data.num_chunks + 1)]
    missing = [p for p in prefixes if not p.with_name(p.name + ".done.json").exists()]
    if missing:
        names = ", ".join(p.name for p in missing)
        raise MorphcptError(f"variant {variant}: chunks not preprocessed yet: {names}")
    out = merged_prefix(experiment, variant)
    bin_path, idx_path = prefix_files(out)
    parameters = {"chunks": [json.loads(p.with_name(p.name + ".done.json").read_text())["outputs"] for p in prefixes]}
    done = read_valid_marker(out, [bin_path, idx_path], parameters)
    if done is not None:
        return {**done, "skipped": True}
    remove_marker(out)
    tokenizer = load_tokenizer(experiment.data.tokenizer)
    docs, tokens = merge_prefixes(prefixes, out, tokenizer.vocab_size)
    write_marker(out, [bin_path, idx_path], parameters, documents=docs, tokens=tokens)
    return {"documents": docs, "tokens": tokens, "skipped": False}
