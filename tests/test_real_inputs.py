"""Real inputs that broke the data and evaluation path: a UTF-8 byte-order mark, an escaped lone surrogate,
a killed writer's temporaries, rejects that only named the chunk line, and case tasks that exact match let
pass by copying. Every line is a record or a counted rejection with its line and reason; nothing is lost."""

from __future__ import annotations

from pathlib import Path

from morphcpt.data.corpus import Record, Rejected, read_records


def test_a_byte_order_mark_does_not_cost_the_first_record(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"text": "unang tala"}\n{"text": "ikalawa"}\n')
    assert [r for r in read_records(path)] == [Record(1, "unang tala"), Record(2, "ikalawa")]


def test_an_escaped_lone_surrogate_is_a_counted_reject_and_the_rest_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "surrogate.jsonl"
    path.write_text('{"text": "bago"}\n{"text": "sira \\ud800 dito"}\n{"text": "pagkatapos"}\n')
    records = list(read_records(path))
    assert records[0] == Record(1, "bago") and records[2] == Record(3, "pagkatapos")
    assert isinstance(records[1], Rejected) and records[1].line == 2 and records[1].reason == "unencodable_text"
    assert "surrogate" in records[1].detail


def test_a_rerun_removes_the_temporaries_of_a_dead_writer_and_keeps_a_live_ones(tmp_path: Path) -> None:
    import subprocess
    import sys

    from morphcpt.data.indexed import atomic_prefix

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # that process has exited
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        prefix = tmp_path / "chunk_0001"
        left = [tmp_path / f".chunk_0001.tmp-{dead_pid}.bin", tmp_path / f".chunk_0001.tmp-{dead_pid}.idx"]
        running = tmp_path / f".chunk_0001.tmp-{live.pid}.bin"
        for path in [*left, running]:
            path.write_bytes(b"partial")
        with atomic_prefix(prefix) as (tmp_bin, tmp_idx):
            tmp_bin.write_bytes(b"b")
            tmp_idx.write_bytes(b"i")
        assert not any(p.exists() for p in left) and running.exists()
        assert (tmp_path / "chunk_0001.bin").read_bytes() == b"b"
    finally:
        live.kill()
        live.wait()


def test_rejects_name_the_corpus_line_and_the_cli_prints_the_rejects_file(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    import yaml

    from conftest import REPO, write_yaml
    from morphcpt.data.offline_corpus import train_bytelevel_tokenizer

    corpus = tmp_path / "data/corpora/demo_tl.jsonl"
    corpus.parent.mkdir(parents=True)
    good = [f'{{"text": "magandang umaga {i} sa inyong lahat"}}' for i in range(30)]
    lines = [*good[:10], "not json", *good[10:20], '{"text": "sira \\ud800"}', *good[20:]]
    (tmp_path / "clean.jsonl").write_text("\n".join(good) + "\n")
    train_bytelevel_tokenizer(tmp_path / "clean.jsonl", tmp_path / "tok.json", vocab_size=300)
    corpus.write_text("\n".join(lines) + "\n")
    experiment = yaml.safe_load((REPO / "configs/experiments/demo.yaml").read_text())
    experiment["data"] |= {"source": {"local_path": "data/corpora/demo_tl.jsonl"}, "tokenizer": "tok.json"}
    write_yaml(tmp_path / "experiment.yaml", experiment)

    def morphcpt(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "morphcpt", *args], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    morphcpt("split", "-e", "experiment.yaml")
    found = {}
    for chunk in range(1, 5):
        out = morphcpt("preprocess", "-e", "experiment.yaml", "--variant", "vanilla", "--chunk", str(chunk))
        rejects = tmp_path / f"data/demo/processed/vanilla/chunk_{chunk:04d}.rejects.jsonl"
        for record in map(json.loads, rejects.read_text().splitlines()):
            found[record["reason"]] = record["source"]
            assert f"rejects (chunk line, corpus line, reason): {rejects.relative_to(tmp_path)}" in out
    assert found == {
        "invalid_json": "data/corpora/demo_tl.jsonl:11",
        "unencodable_text": "data/corpora/demo_tl.jsonl:22",
    }


def test_exact_match_keeps_case_only_where_the_task_is_about_case() -> None:
    from morphcpt.evaluation.scoring import case_matters, normalize

    assert case_matters("uppercase") and case_matters("to_lowercase") and not case_matters("apply_infix")
    # A case task: copying the lower-case input must not pass.
    assert normalize(" bahay. ", case_matters("uppercase")) != normalize("BAHAY", case_matters("uppercase"))
    assert normalize("BAHAY", case_matters("uppercase")) == normalize('"BAHAY"', case_matters("uppercase"))
    # Any other task: case and surrounding punctuation do not matter.
    assert normalize("Kumain.", case_matters("apply_infix")) == normalize("kumain", case_matters("apply_infix"))


def _pacute(text: str, choices: list[str], label: str, subcategory: str = "affix") -> str:
    import json

    prompt = {"text_en": text, **{f"choice{i}": c for i, c in enumerate(choices, start=1)}}
    return json.dumps({"category": "affixation", "subcategory": subcategory, "prompts": [prompt], "label": label})


def test_published_items_that_repeat_an_option_are_skipped_and_counted_and_concatenations_count_once(
    tmp_path: Path, capsys: object
) -> None:
    from morphcpt.evaluation.run import load_benchmark

    directory = tmp_path / "pacute"
    directory.mkdir()
    good = [_pacute(f"Which is right {i}?", [f"a{i}", f"b{i}", f"c{i}", f"d{i}"], "B") for i in range(3)]
    repeated = _pacute("Which is right x?", ["kain", "kumain", "kain", "kinain"], "B")
    repeated_gold = _pacute("Which is right y?", ["kain", "kumain", "kumain", "kinain"], "B")
    (directory / "affixation.jsonl").write_text("\n".join([good[0], repeated, good[1], repeated_gold]) + "\n")
    # A published "all" file that concatenates the suites: its copies count once.
    (directory / "all.jsonl").write_text("\n".join([good[0], good[1], good[2]]) + "\n")
    items = load_benchmark(tmp_path, "pacute")
    assert sorted(item.prompt("en") for item in items) == [f"Which is right {i}?" for i in range(3)]
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert "affixation.jsonl:2: skipped (repeated option)" in err
    assert "affixation.jsonl:4: skipped (repeated option is gold)" in err
    assert "2 item(s) of all.jsonl repeat items of affixation.jsonl; counted once" in err
    assert "skipped 2 item(s): {'repeated_option': 1, 'repeated_option_is_gold': 1}" in err


def test_an_item_is_scored_only_in_the_modes_its_prompt_supports(tmp_path: Path) -> None:
    from morphcpt.evaluation.items import read_items

    path = tmp_path / "mixed.jsonl"
    lettered = _pacute("Pick A-D: which is right?", ["a", "b", "c", "d"], "C")
    import json

    options = {"correct": "kumain", "incorrect1": "kain", "incorrect2": "kinain", "incorrect3": "ukain"}
    prompt = {"text_en": "Add -um- to kain.", "mcq_options": options}
    asked = json.dumps({"category": "affixation", "subcategory": "infix", "label": "kumain", "prompts": [prompt]})
    path.write_text(lettered + "\n" + asked + "\n")
    first, second = read_items(path)
    assert first.modes == ("mcq",) and second.modes == ("mcq", "gen")


def test_summaries_report_each_subcategory_as_well_as_the_category(tmp_path: Path) -> None:
    import json

    from morphcpt.evaluation.scoring import summarize

    records = [
        {"suite": "affixation", "task": "infix", "mode": "gen", "correct": True},
        {"suite": "affixation", "task": "infix", "mode": "gen", "correct": False},
        {"suite": "affixation", "task": "suffix", "mode": "gen", "correct": True},
    ]
    path = tmp_path / "pacute.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    gen = summarize(path)["affixation"]["gen"]
    assert (gen["n"], gen["correct"]) == (3, 2)
    assert gen["by_task"] == {
        "infix": {"n": 2, "correct": 1, "accuracy": 0.5},
        "suffix": {"n": 1, "correct": 1, "accuracy": 1.0},
    }
