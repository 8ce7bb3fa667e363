"""Deterministic benchmark generation: PACUTE-style suites and hierarchical levels 0-5, for a language pack.

The pack supplies one question maker per (benchmark, suite): the question in each of its prompt languages,
the answer its rules compute, and near-miss distractors, so an item cannot be solved by form alone. This
module draws questions with a generator seeded by (seed, benchmark, suite), drops repeats, fills missing
distractors, places the gold uniformly among four options and writes the items.
"""

from __future__ import annotations

import hashlib
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from morphcpt.data.markers import atomic_output, write_json_atomic
from morphcpt.errors import MorphcptError
from morphcpt.evaluation.items import Item
from morphcpt.languages import LanguagePack, resolve_language

PACUTE_SUITES = ("affixation", "composition", "manipulation", "syllabification")
LEVELS = tuple(f"level_{i}" for i in range(6))


@dataclass(frozen=True)
class Question:
    """One question before its options are shuffled: `prompts` maps each prompt language to its text."""

    task: str
    prompts: dict[str, str]
    answer: str
    distractors: tuple[str, ...]
    source: dict[str, object]


Maker = Callable[[random.Random], Question]


def _letter_noise(word: str, rng: random.Random, letters: str) -> str:
    """A one-letter edit of `word`, for filling distractors."""
    i = rng.randrange(len(word))
    choice = rng.choice(letters)
    return word[:i] + choice + word[i + 1 :] if rng.random() < 0.5 else word[:i] + choice + word[i:]


def _options(
    answer: str, distractors: tuple[str, ...], rng: random.Random, letters: str
) -> tuple[tuple[str, ...], int]:
    wrong: list[str] = []
    for d in distractors:
        if d != answer and d not in wrong and d:
            wrong.append(d)
    while len(wrong) < 3:
        candidate = (
            str(int(answer) + rng.choice((-3, 3, 4))) if answer.isdigit() else _letter_noise(answer, rng, letters)
        )
        if candidate != answer and candidate not in wrong:
            wrong.append(candidate)
    rng.shuffle(wrong)
    gold = rng.randrange(4)
    options = [*wrong[:3]]
    options.insert(gold, answer)
    return tuple(options), gold


def _maker(pack: LanguagePack, benchmark: str, suite: str) -> tuple[Maker, str]:
    """The pack's maker for one suite, and the letters its distractor noise draws from."""
    if pack.benchmarks is None:
        raise MorphcptError(f"language pack {pack.code} has no benchmark generators")
    makers = pack.benchmarks.makers()
    if (benchmark, suite) not in makers:
        offered = ", ".join(f"{b}/{s}" for b, s in makers) or "none"
        raise MorphcptError(f"language pack {pack.code} has no generator for {benchmark}/{suite} (it has: {offered})")
    return makers[(benchmark, suite)], pack.benchmarks.noise_letters


def generate_suite(benchmark: str, suite: str, count: int, seed: int, *, language: LanguagePack | str) -> list[Item]:
    pack = resolve_language(language)
    make, letters = _maker(pack, benchmark, suite)
    rng = random.Random(f"{seed}/{benchmark}/{suite}")
    items: list[Item] = []
    seen: set[tuple[str, str]] = set()
    attempts = 0
    while len(items) < count and attempts < count * 50:
        attempts += 1
        question = make(rng)
        if set(question.prompts) != set(pack.prompt_languages):
            raise MorphcptError(
                f"language pack {pack.code}: a {benchmark}/{suite} question has prompts in "
                f"{', '.join(question.prompts)}, not in its prompt languages {', '.join(pack.prompt_languages)}"
            )
        # Repeats are judged on the English prompt, which every pack writes.
        if (question.task, question.prompts["en"]) in seen:
            continue
        seen.add((question.task, question.prompts["en"]))
        options, gold = _options(question.answer, question.distractors, rng, letters)
        item = Item(
            id=f"{benchmark}/{suite}/{len(items) + 1:05d}",
            benchmark=benchmark,
            suite=suite,
            task=question.task,
            prompts=dict(question.prompts),
            answer=question.answer,
            options=options,
            gold=gold,
            source=dict(question.source),
        )
        item.check()
        items.append(item)
    return items


def suites_of(benchmark: str) -> tuple[str, ...]:
    if benchmark == "pacute":
        return PACUTE_SUITES
    if benchmark == "hierarchical":
        return LEVELS
    raise ValueError(f"unknown benchmark {benchmark!r} (known: pacute, hierarchical)")


def generator_version(language: LanguagePack | str) -> str:
    """A checksum of what the suites are generated from: this generic layer (this module, the items and the
    cues that balance distractors) and every file of the package that defines the pack's question makers
    (its code, roots and word lists). Recorded in the manifest and compared by the benchmarks stage, so
    benchmarks written by older code are generated again (a comment edit reruns them too: cheap, and the same
    items come out). Installed data the pack reads from elsewhere (wordfreq's lists) is not covered."""
    pack = resolve_language(language)
    if pack.benchmarks is None:
        return "none"
    module = Path(sys.modules[pack.benchmarks.makers.__module__].__file__ or __file__)
    package = module.parent  # a package's whole folder; a single-module pack is that file alone
    here = Path(__file__).parent
    files = [here / "generate.py", here / "items.py", here / "cues.py"]
    if module.name == "__init__.py":
        files += sorted(f for f in package.rglob("*") if f.is_file() and "__pycache__" not in f.parts)
    else:
        files.append(module)
    digest = hashlib.sha256()
    for path in files:  # names relative to their folder: the same code installed elsewhere hashes the same
        digest.update(f"{path.relative_to(here if path.parent == here else package)}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def write_benchmarks(
    out_dir: Path, benchmarks: list[str], count: int, seed: int, *, language: LanguagePack | str
) -> dict[str, int]:
    """Write <out_dir>/<benchmark>/<suite>.jsonl and a manifest; returns items per file."""
    pack = resolve_language(language)
    for benchmark in benchmarks:  # every suite has a maker, before any file is written
        for suite in suites_of(benchmark):
            _maker(pack, benchmark, suite)
    written: dict[str, int] = {}
    for benchmark in benchmarks:
        for suite in suites_of(benchmark):
            items = generate_suite(benchmark, suite, count, seed, language=pack)
            path = out_dir / benchmark / f"{suite}.jsonl"
            with atomic_output(path) as tmp:
                tmp.write_text("".join(item.to_json() + "\n" for item in items), encoding="utf-8")
            written[f"{benchmark}/{suite}"] = len(items)
    manifest = {"seed": seed, "items_per_suite": count, "generator": generator_version(pack), "files": written}
    write_json_atomic(out_dir / "manifest.json", manifest)
    return written
