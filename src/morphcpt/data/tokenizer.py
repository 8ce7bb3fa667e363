"""Tokenizers behind one small interface, with each token's exact bytes (what StochasTok and Patok edit).

Loaded by path (a `tokenizer.json`, a directory with one, or a SentencePiece `.model`) or by hub id
(`google/gemma-3-1b-pt`, through transformers; needs HF_TOKEN for gated models and network on the cluster).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from morphcpt.errors import MorphcptError

_BYTE_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


def _bytelevel_decoder() -> dict[str, int]:
    """GPT-2's byte-to-unicode table, inverted: the printable stand-ins byte-level BPE uses for raw bytes."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


@dataclass
class Tokenizer:
    """Encode text to ids and map every id to its bytes; `decode_bytes(ids)` is the plain concatenation."""

    name: str
    vocab_size: int
    eod_id: int
    _encode_batch: Any = field(repr=False)
    _pieces: list[str] = field(repr=False)
    _kind: str = field(repr=False)
    special_ids: frozenset[int] = frozenset()

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self._encode_batch(texts)

    @cached_property
    def token_bytes(self) -> list[bytes]:
        if self._kind == "bytelevel":
            table = _bytelevel_decoder()
            # Special tokens (<eos>, ...) are control symbols, not text: they decode to nothing.
            return [
                b"" if index in self.special_ids else bytes(table.get(ch, 0) for ch in piece)
                for index, piece in enumerate(self._pieces)
            ]
        out = []
        for index, piece in enumerate(self._pieces):
            match = _BYTE_PIECE.match(piece)
            if index in self.special_ids:
                out.append(b"")
            elif match:
                out.append(bytes([int(match.group(1), 16)]))
            else:
                out.append(piece.replace("\u2581", " ").encode("utf-8"))
        return out

    def decode_bytes(self, ids: list[int] | Any) -> bytes:
        table = self.token_bytes
        return b"".join(table[int(i)] for i in ids)

    def decode(self, ids: list[int] | Any) -> str:
        return self.decode_bytes(ids).decode("utf-8")

    @cached_property
    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for piece in self._pieces:
            digest.update(piece.encode("utf-8", "surrogatepass") + b"\x00")
        return digest.hexdigest()[:16]


def _from_hf_tokenizers(tok: Any, name: str) -> Tokenizer:
    vocab = tok.get_vocab(with_added_tokens=True)
    size = max(vocab.values()) + 1
    pieces = [""] * size
    for piece, index in vocab.items():
        pieces[index] = piece
    specials = {t.content for t in tok.get_added_tokens_decoder().values() if t.special}
    special_ids = frozenset(vocab[p] for p in specials if p in vocab)
    model = tok.to_str()
    kind = "bytelevel" if '"ByteLevel"' in model else "sentencepiece"
    eod = next((vocab[p] for p in ("<eos>", "</s>", "<|endoftext|>", "<|eos|>") if p in vocab), None)
    if eod is None:
        raise MorphcptError(f"tokenizer {name}: no end-of-document token (<eos>, </s> or <|endoftext|>)")

    # A document that contains the text "<eos>" must not get an end-of-document token in its middle.
    tok.encode_special_tokens = True

    def encode_batch(texts: list[str]) -> list[list[int]]:
        return [enc.ids for enc in tok.encode_batch(texts, add_special_tokens=False)]

    return Tokenizer(name, size, eod, encode_batch, pieces, kind, special_ids)


def _from_sentencepiece(path: Path) -> Tokenizer:
    import sentencepiece as spm

    proc = spm.SentencePieceProcessor(model_file=str(path))
    pieces = [proc.id_to_piece(i) for i in range(proc.get_piece_size())]
    special = frozenset(i for i in range(len(pieces)) if proc.is_control(i) or proc.is_unknown(i))
    eod = proc.eos_id()
    if eod < 0:
        raise MorphcptError(f"tokenizer {path}: the SentencePiece model has no </s> (eos) piece")

    def encode_batch(texts: list[str]) -> list[list[int]]:
        return proc.encode(texts)

    return Tokenizer(str(path), len(pieces), eod, encode_batch, pieces, "sentencepiece", special)


def load_tokenizer(name_or_path: str) -> Tokenizer:
    path = Path(name_or_path)
    try:
        if path.suffix == ".model":
            if not path.exists():
                raise MorphcptError(f"tokenizer {path} not found")
            return _from_sentencepiece(path)
        if path.suffix == ".json" or path.is_dir():
            json_path = path if path.suffix == ".json" else path / "tokenizer.json"
            if not json_path.exists():
                raise MorphcptError(f"tokenizer {json_path} not found")
            from tokenizers import Tokenizer as HFTokenizer

            return _from_hf_tokenizers(HFTokenizer.from_file(str(json_path)), str(json_path))
        if path.exists() or name_or_path.startswith((".", "/")):
            raise MorphcptError(f"tokenizer {name_or_path}: expected a tokenizer.json, a directory or a .model file")
        from transformers import AutoTokenizer

        hf = AutoTokenizer.from_pretrained(name_or_path)
        return _from_hf_tokenizers(hf.backend_tokenizer, name_or_path)
    except MorphcptError:
        raise
    except Exception as exc:  # the libraries raise many types; the user needs the path and the cause
        raise MorphcptError(f"cannot load tokenizer {name_or_path}: {exc}") from None
