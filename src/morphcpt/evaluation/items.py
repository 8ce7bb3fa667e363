"""Benchmark items: our JSONL schema, and a reader for PACUTE's published format.

Our schema (one JSON object per line, in data/benchmarks/<benchmark>/<suite>.jsonl):
  id          unique, e.g. "pacute/affixation/00017"
  benchmark   "pacute" or "hierarchical"
  suite       PACUTE category (affixation, composition, manipulation, syllabification) or "level_0".."level_5"
  task        the subcategory, e.g. "apply_infix", "char_count"
  prompt_en   the question in English;  prompt_<lang>: the same in each other prompt language of the
              language pack that made it (Item.prompts maps "en", <lang>, ... to the texts)
  answer      the gold answer as text (what generation must produce)
  options     four distinct strings (MCQ);  gold: index of `answer` in options (0-3); no options and gold -1
              for a generation-only item
  source      how the item was made (root, affix, word, ...), for checking and analysis

PACUTE's format: {category, subcategory, prompts: [{text_en, text_<lang>..., mcq_options: {correct,
incorrect1..3}, choice1..4}], label} where label is a letter A-D (MCQ: choice<label> is gold) or the answer
string (generation). A published file may lack a translation: its items are then asked in English.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from morphcpt.errors import MorphcptError

LETTERS = "ABCD"
PROMPT = "prompt_"


def _prompts(data: dict[str, Any], prefix: str) -> dict[str, str]:
    """Non-empty `<prefix><lang>` fields as {lang: text}."""
    return {key.removeprefix(prefix): str(value) for key, value in data.items() if key.startswith(prefix) and value}


@dataclass(frozen=True)
class Item:
    id: str
    benchmark: str
    suite: str
    task: str
    prompts: dict[str, str]
    answer: str
    options: tuple[str, ...]
    gold: int
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def has_options(self) -> bool:
        return bool(self.options)

    @property
    def modes(self) -> tuple[str, ...]:
        """The scoring modes the prompt supports: a published item whose prompt asks to pick a lettered
        choice is MCQ only (asked to generate, the model would answer about options it never sees)."""
        if not self.options:
            return ("gen",)
        return ("mcq",) if self.source.get("prompt") == "choices" else ("mcq", "gen")

    def check(self) -> None:
        if not self.options and self.gold == -1:
            return
        if len(self.options) != 4 or len(set(self.options)) != 4:
            raise ValueError(f"{self.id}: options must be 4 distinct strings, got {self.options}")
        if not 0 <= self.gold < 4 or self.options[self.gold] != self.answer:
            raise ValueError(f"{self.id}: gold {self.gold} does not point at the answer {self.answer!r}")

    def prompt(self, lang: str) -> str:
        """The question in `lang`, or in English when the item has no (or an empty) prompt in `lang`."""
        return self.prompts.get(lang) or self.prompts["en"]

    def to_json(self) -> str:
        data = asdict(self)
        data["options"] = list(self.options)
        data.update({f"{PROMPT}{lang}": text for lang, text in data.pop("prompts").items()})
        return json.dumps(data, ensure_ascii=False, sort_keys=True)


def _from_ours(data: dict[str, Any]) -> Item:
    return Item(
        id=str(data["id"]),
        benchmark=str(data["benchmark"]),
        suite=str(data["suite"]),
        task=str(data["task"]),
        prompts={"en": str(data["prompt_en"]), **_prompts(data, PROMPT)},
        answer=str(data["answer"]),
        options=tuple(str(o) for o in data["options"]),
        gold=int(data["gold"]),
        source=dict(data.get("source", {})),
    )


def _from_pacute(data: dict[str, Any], path: Path, line: int) -> Item:
    """A PACUTE record. The gold is the label's choice (MCQ) or the label itself (generation), never option 0."""
    prompt = data["prompts"][0]
    label = str(data["label"]).strip()
    choices = [prompt.get(f"choice{i}") for i in range(1, 5)]
    prompt_kind = "answer"  # the prompt asks for the answer itself: scored by MCQ and by generation
    if all(isinstance(c, str) for c in choices) and label in LETTERS:
        prompt_kind = "choices"  # the prompt lists lettered choices: MCQ only
        options = tuple(str(c) for c in choices)
        gold = LETTERS.index(label)
        answer = options[gold]
        correct = prompt.get("mcq_options", {}).get("correct")
        if correct is not None and correct != answer:
            raise MorphcptError(
                f"{path}:{line}: label {label} picks {answer!r}, but mcq_options.correct is {correct!r}"
            )
    else:
        answer = label
        mcq = prompt.get("mcq_options") or {}
        wrong = [mcq.get(f"incorrect{i}") for i in range(1, 4)]
        if mcq.get("correct") not in (None, answer):
            raise MorphcptError(f"{path}:{line}: label {answer!r} differs from mcq_options.correct {mcq['correct']!r}")
        if all(isinstance(w, str) for w in wrong):
            # The gold's position comes from a hash of the prompt: never always first (an "always A" scorer
            # would then look perfect), and the same on every run.
            gold = int(hashlib.sha256(prompt["text_en"].encode()).hexdigest(), 16) % 4
            rest = [str(w) for w in wrong]
            options = (*rest[:gold], answer, *rest[gold:])
        else:
            options, gold = (), -1  # generation only
    return Item(
        id=f"pacute-{path.stem}-{line:05d}",
        benchmark="pacute",
        suite=str(data["category"]),
        task=str(data["subcategory"]),
        prompts={"en": str(prompt["text_en"]), **_prompts(prompt, "text_")},
        answer=answer,
        options=options,
        gold=gold,
        source={"format": "pacute", "file": path.name, "line": line, "prompt": prompt_kind},
    )


def repeated_option(item: Item) -> str | None:
    """Why a published MCQ item cannot be scored fairly, or None: an option appears twice (a model cannot
    be told apart from a coin flip between the copies), worse when the repeated option is the gold."""
    if not item.options or len(set(item.options)) == len(item.options):
        return None
    repeated = {o for o in item.options if item.options.count(o) > 1}
    return "repeated_option_is_gold" if item.answer in repeated else "repeated_option"


def read_items(path: Path, skipped: Counter[str] | None = None) -> list[Item]:
    """Items of one JSONL file in either format; a malformed line is an error naming the file and line.
    Published (PACUTE) items that repeat an option are skipped, counted in `skipped` by reason, and named
    in a warning: real files hold a few, and one must not cost the whole file."""
    items: list[Item] = []
    seen: set[str] = set()
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
            item = _from_pacute(data, path, number) if "prompts" in data else _from_ours(data)
            why = repeated_option(item) if "prompts" in data else None
            if why is not None:
                if skipped is not None:
                    skipped[why] += 1
                print(f"warning: {path}:{number}: skipped ({why.replace('_', ' ')}): {list(item.options)}",
                      file=sys.stderr)  # fmt: skip
                continue
            item.check()
        except MorphcptError:
            raise
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            reason = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise MorphcptError(f"{path}:{number}: malformed benchmark item: {reason}") from None
        if item.id in seen:
            raise MorphcptError(f"{path}:{number}: duplicate item id {item.id}")
        seen.add(item.id)
        items.append(item)
    return items
