"""The token batch both sides run on: --tokens FILE, --text FILE, or the bundled sample text.

--tokens: a JSON list of ids (one stream) or a list of lists (one row each, cut to the shortest).
--text: tokenised with the HF folder's tokenizer.json through `tokenizers`, else transformers'
AutoTokenizer; neither importable, or no tokenizer in the folder, is an error naming what to do.
Default: sample.txt beside this file, tokenised the same way when a tokenizer is available, else
id i = (256 * byte[i] + byte[i+1]) modulo the vocabulary over its UTF-8 bytes
("byte-pairs-modulo-vocab": deterministic, needs nothing, and spreads over the whole vocabulary,
so every vocab-parallel shard of the embedding and output layer is exercised).
A stream is cut into `batch` consecutive windows of `seq_len` ids, repeated from the start if short.
"""

import importlib.util
import json
import os

from verify_errors import VerifyError

SAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sample.txt")


def tokenizer_for(hf_dir, required):
    path = os.path.join(hf_dir, "tokenizer.json")
    if importlib.util.find_spec("tokenizers") is not None and os.path.exists(path):
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(path)
        return "tokenizers", lambda text: tok.encode(text).ids
    has_files = any(os.path.exists(os.path.join(hf_dir, n)) for n in ("tokenizer.json", "tokenizer.model", "tokenizer_config.json"))
    if importlib.util.find_spec("transformers") is not None and has_files:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(hf_dir)
        return "transformers", lambda text: tok(text)["input_ids"]
    if not required:
        return None, None
    if not has_files:
        raise VerifyError("verify.no-tokenizer", f"{hf_dir} has no tokenizer.json / tokenizer.model, so --text cannot be tokenised", "pass token ids with --tokens FILE (a JSON list), or copy the tokenizer files into the folder")
    raise VerifyError("verify.no-tokenizer", "neither the `tokenizers` nor the `transformers` Python package is importable, so --text cannot be tokenised", "pip install tokenizers (or transformers) into the Python that runs the check, or pass --tokens FILE")


def read_text(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise VerifyError("verify.input", f"cannot read {path}: {e}") from e


def windows(stream, batch, seq_len):
    if len(stream) < 2:
        raise VerifyError("verify.input", f"the input has {len(stream)} tokens; at least 2 are needed for a next-token loss")
    need = batch * seq_len
    data = (stream * (need // len(stream) + 1))[:need] if len(stream) < need else stream[:need]
    return [data[r * seq_len : (r + 1) * seq_len] for r in range(batch)]


def build_batch(opts, hf_dir, vocab, seq_len, batch):
    """(rows: B lists of S ids, description dict); plain Python, so input errors come before torch is imported."""
    info = {"source": "bundled-sample", "tokenization": None}
    if opts.tokens:
        info = {"source": "tokens", "file": opts.tokens, "tokenization": None}
        try:
            with open(opts.tokens, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise VerifyError("verify.input", f"cannot read {opts.tokens} as JSON: {e}") from e
        if isinstance(data, list) and data and all(isinstance(r, list) for r in data):
            rows = data[:batch]
            length = min(min(len(r) for r in rows), seq_len)
            if length < 2:
                raise VerifyError("verify.input", f"{opts.tokens}: rows need at least 2 tokens")
            rows = [r[:length] for r in rows]
        elif isinstance(data, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in data):
            rows = windows(data, batch, seq_len)
        else:
            raise VerifyError("verify.input", f"{opts.tokens}: expected a JSON list of token ids or a list of lists")
    else:
        text_path = opts.text or SAMPLE
        if opts.text:
            info = {"source": "text", "file": opts.text}
        kind, encode = tokenizer_for(hf_dir, required=bool(opts.text))
        text = read_text(text_path)
        if encode is None:
            info["tokenization"] = "byte-pairs-modulo-vocab"
            data = text.encode("utf-8")
            stream = [(256 * a + b) % vocab for a, b in zip(data, data[1:])]
        else:
            info["tokenization"] = kind
            stream = list(encode(text))
        rows = windows(stream, batch, seq_len)
    bad = [x for r in rows for x in r if not isinstance(x, int) or isinstance(x, bool) or x < 0 or x >= vocab]
    if bad:
        raise VerifyError("verify.input", f"token id {bad[0]} is outside the vocabulary [0, {vocab})")
    info.update({"batch": len(rows), "seqLen": len(rows[0]), "tokens": len(rows) * len(rows[0])})
    return rows, info
