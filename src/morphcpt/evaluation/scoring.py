"""Scoring causal LMs on benchmark items: MCQ by log-likelihood, generation by greedy decoding.

MCQ: each option is scored as a continuation of the prompt (context and continuation tokenized apart, as
lm-evaluation-harness does). Two accuracies: by summed log-probability, and length-normalised (divided by
the option's characters). The prediction must be the unique maximum: a tie counts as wrong, never as gold.
Generation: greedy, stopped at the first newline or `max_new_tokens`, exact match after `normalize`.
A context is the item's question in one prompt language, then the language pack's answer cue for it.

Results go to <results_dir>/<model>/<benchmark>.jsonl, one line per (item, mode, prompt language), appended
as batches finish; a rerun skips what is there (a torn last line is dropped), so nothing is duplicated.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from morphcpt.data.markers import write_json_atomic
from morphcpt.errors import MorphcptError
from morphcpt.evaluation.items import Item
from morphcpt.languages import LanguagePack, resolve_language
from morphcpt.progress import Reporter

_PUNCT = re.compile(r"^[\s\"'`.,;:!?()\[\]]+|[\s\"'`.,;:!?()\[\]]+$")


_CASE_TASK = re.compile(r"upper|lower|capital|case", re.IGNORECASE)


def case_matters(task: str) -> bool:
    """A task about letter case (PACUTE's uppercase/lowercase manipulations): lower-casing both sides would
    let a copy of the input pass, so such answers are compared with their case."""
    return bool(_CASE_TASK.search(task))


def normalize(text: str, keep_case: bool = False) -> str:
    """Lower case (unless `keep_case`), whitespace collapsed, surrounding quotes and punctuation stripped."""
    collapsed = " ".join(text.split())
    return _PUNCT.sub("", collapsed if keep_case else collapsed.lower())


def context(item: Item, lang: str, language: LanguagePack) -> str:
    return f"{item.prompt(lang)}\n{language.answer_cue(lang)}"


class Scorer(Protocol):
    name: str

    def option_logprobs(self, contexts: list[str], options: list[list[str]]) -> list[list[float]]: ...

    def generate(self, contexts: list[str], max_new_tokens: int) -> list[str]: ...


def unique_argmax(values: list[float]) -> int | None:
    best = max(values)
    winners = [i for i, v in enumerate(values) if v == best]
    return winners[0] if len(winners) == 1 else None


@dataclass
class HFScorer:
    """A Hugging Face causal LM (local directory, or hub id on clusters); CPU or GPU, bf16 on GPU."""

    name: str
    model: Any
    tokenizer: Any
    device: str
    batch_size: int = 16

    @classmethod
    def load(cls, path: str, name: str | None = None, device: str = "auto", batch_size: int = 16) -> HFScorer:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        try:
            tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval()
        except Exception as exc:  # many library error types; the user needs the path and the cause
            raise MorphcptError(f"cannot load model {path}: {exc}") from None
        return cls(name or model_name(path), model, tokenizer, device, batch_size)

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def option_logprobs(self, contexts: list[str], options: list[list[str]]) -> list[list[float]]:
        import torch

        pairs = [
            (self._encode(c), self._encode(" " + o)) for c, opts in zip(contexts, options, strict=True) for o in opts
        ]
        scores: list[float] = []
        pad = self.tokenizer.pad_token_id or 0
        for start in range(0, len(pairs), self.batch_size):
            batch = pairs[start : start + self.batch_size]
            sequences = [(c + o)[-self.model.config.max_position_embeddings :] for c, o in batch]
            width = max(len(s) for s in sequences)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, seq in enumerate(sequences):
                ids[row, : len(seq)] = torch.tensor(seq)
                mask[row, : len(seq)] = 1
            with torch.no_grad():
                logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
            logprobs = torch.log_softmax(logits.float(), dim=-1).cpu()
            for row, ((_, option), seq) in enumerate(zip(batch, sequences, strict=True)):
                first = len(seq) - len(option)
                targets = torch.tensor(seq[first:])
                picked = logprobs[row, first - 1 : len(seq) - 1].gather(1, targets[:, None])
                scores.append(float(picked.sum()))
        per_item, index = [], 0
        for opts in options:
            per_item.append(scores[index : index + len(opts)])
            index += len(opts)
        return per_item

    def generate(self, contexts: list[str], max_new_tokens: int) -> list[str]:
        import torch

        outputs = []
        for text in contexts:
            ids = torch.tensor([self._encode(text)], device=self.device)
            with torch.no_grad():
                out = self.model.generate(
                    input_ids=ids,
                    attention_mask=torch.ones_like(ids),
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
                )
            continuation = self.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
            outputs.append(continuation.strip().split("\n")[0])
        return outputs


def model_name(path: str) -> str:
    p = Path(path)
    return p.name if p.exists() else path.replace("/", "--")


def _read_done(path: Path) -> set[tuple[str, str, str]]:
    """Keys already scored; a torn last line (a killed run) is cut off so appends stay valid JSONL."""
    if not path.exists():
        return set()
    raw = path.read_bytes()
    good = raw[: raw.rfind(b"\n") + 1]
    if good != raw:
        path.write_bytes(good)
    done = set()
    for line in good.decode("utf-8").splitlines():
        record = json.loads(line)
        done.add((record["id"], record["mode"], record["lang"]))
    return done


def _batches(items: list[Item], size: int) -> Iterable[list[Item]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def score_benchmark(
    scorer: Scorer,
    benchmark: str,
    items: list[Item],
    results_dir: Path,
    modes: list[str],
    langs: list[str],
    max_new_tokens: int = 24,
    batch_size: int = 32,
    progress: Any = None,
    *,
    language: LanguagePack | str,
    reporter: Reporter | None = None,
) -> Path:
    """Score `items` in each mode and prompt language (one of `language`'s), appending to
    <results_dir>/<model>/<benchmark>.jsonl."""
    if not items:
        raise MorphcptError(f"benchmark {benchmark}: no items to score")
    pack = resolve_language(language)
    pack.check_prompt_languages(langs)
    out = results_dir / scorer.name / f"{benchmark}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    done = _read_done(out)
    # Items are scored only in the modes their prompt supports: the total counts exactly those.
    total = sum(1 for mode in modes for _ in langs for item in items if mode in item.modes)
    task = progress.add_task(f"{scorer.name} {benchmark}", total=total) if progress else None
    with out.open("a", encoding="utf-8") as handle:
        for mode in modes:
            for lang in langs:
                supported = [i for i in items if mode in i.modes]
                todo = [i for i in supported if (i.id, mode, lang) not in done]
                if progress:
                    progress.advance(task, len(supported) - len(todo))
                if reporter:
                    reporter.advance(len(supported) - len(todo))
                for batch in _batches(todo, batch_size):
                    contexts = [context(item, lang, pack) for item in batch]
                    if mode == "mcq":
                        scored = scorer.option_logprobs(contexts, [list(i.options) for i in batch])
                        records = [_mcq_record(i, lang, s) for i, s in zip(batch, scored, strict=True)]
                    else:
                        texts = scorer.generate(contexts, max_new_tokens)
                        records = [_gen_record(i, lang, t) for i, t in zip(batch, texts, strict=True)]
                    handle.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
                    handle.flush()
                    if progress:
                        progress.advance(task, len(batch))
                    if reporter:
                        reporter.advance(len(batch))
    return out


def _base(item: Item, mode: str, lang: str) -> dict[str, Any]:
    return {
        "id": item.id,
        "benchmark": item.benchmark,
        "suite": item.suite,
        "task": item.task,
        "mode": mode,
        "lang": lang,
    }


def _mcq_record(item: Item, lang: str, logprobs: list[float]) -> dict[str, Any]:
    normalised = [lp / max(len(o), 1) for lp, o in zip(logprobs, item.options, strict=True)]
    pred, pred_norm = unique_argmax(logprobs), unique_argmax(normalised)
    return {
        **_base(item, "mcq", lang),
        "gold": item.gold,
        "pred": pred,
        "pred_norm": pred_norm,
        "correct": pred == item.gold,
        "correct_norm": pred_norm == item.gold,
        "logprobs": [round(x, 5) for x in logprobs],
    }


def _gen_record(item: Item, lang: str, text: str) -> dict[str, Any]:
    return {
        **_base(item, "gen", lang),
        "answer": item.answer,
        "output": text,
        "correct": normalize(text, case_matters(item.task)) == normalize(item.answer, case_matters(item.task)),
    }


def summarize(results_file: Path) -> dict[str, Any]:
    """Accuracy per suite and mode (and the normalised MCQ accuracy), and per subcategory (task) within
    each, from the per-item records."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for line in results_file.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        groups[(record["suite"], record["mode"])].append(record)
    if not groups:
        raise MorphcptError(f"{results_file}: no results")
    summary: dict[str, Any] = {}
    for (suite, mode), records in sorted(groups.items()):
        entry = {"n": len(records), "correct": sum(r["correct"] for r in records)}
        entry["accuracy"] = entry["correct"] / entry["n"]
        if mode == "mcq":
            entry["correct_norm"] = sum(r["correct_norm"] for r in records)
            entry["accuracy_norm"] = entry["correct_norm"] / entry["n"]
        by_task: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for record in records:
            by_task[record.get("task", "")][0] += 1
            by_task[record.get("task", "")][1] += int(record["correct"])
        entry["by_task"] = {
            task: {"n": n, "correct": correct, "accuracy": correct / n}
            for task, (n, correct) in sorted(by_task.items())
        }
        summary.setdefault(suite, {})[mode] = entry
    return summary


def write_summary(model_dir: Path) -> Path:
    summary = {path.stem: summarize(path) for path in sorted(model_dir.glob("*.jsonl"))}
    path = model_dir / "summary.json"
    write_json_atomic(path, summary)
    return path
