"""Real inputs that broke the reader: a UTF-8 byte-order mark, an escaped lone surrogate. Every line is a
record or a counted rejection with its line and reason; nothing else in the file is lost."""

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
