"""What identifies a model's files for the score cache: the weights' content (memoised cheaply),
the small files that change scores (config, tokenizer, chat template), and a Hub snapshot's commit.

Torch-free; :mod:`rewardkit.models.loading` builds a model's identity from these.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from rewardkit.models.embedded import cache_root


def hub_commit(name: str, revision: str | None = None) -> str | None:
    """The commit of the Hub snapshot ``name`` (at ``revision``, default its main branch) loads
    from: online, the branch's current commit (one request, as ``from_pretrained`` makes
    next, so both name the same snapshot); offline, or when the Hub does not answer, the one
    the local Hub cache's ref names. None when neither knows."""
    from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache

    found: Any = None
    if not constants.HF_HUB_OFFLINE:
        try:
            found = hf_hub_download(name, "config.json", revision=revision, etag_timeout=3)
        except Exception:  # unreachable, no config.json...: the local cache may still know
            found = None
    if not isinstance(found, str):
        found = try_to_load_from_cache(name, "config.json", revision=revision)
    if not isinstance(found, str):
        return None
    snapshot = Path(found).parent
    return snapshot.name if snapshot.parent.name == "snapshots" else None


#: Bytes read at each end of a weight file for its memo key (a backstop for a rewrite inside one
#: clock tick, where size, times and inode all match; the whole file is hashed on a memo miss).
SAMPLE_BYTES = 64 << 10


def _memo_key(f: Path) -> str:
    """What the weight-hash memo trusts a file by: its resolved path, size, mtime, ctime and
    inode, and a hash of its first and last :data:`SAMPLE_BYTES` (the whole file when it is
    smaller). A file rewritten in place with its mtime put back (``cp -p``, ``rsync -t``,
    ``tar x``) or replaced by another of the same size (a rename) misses: ctime cannot be set
    back, and an inode changes with a rename. Never a read of the whole file."""
    st = f.stat()
    sample = hashlib.sha256()
    with f.open("rb") as fh:
        sample.update(fh.read(SAMPLE_BYTES))
        if st.st_size > 2 * SAMPLE_BYTES:
            fh.seek(st.st_size - SAMPLE_BYTES)
        sample.update(fh.read(SAMPLE_BYTES))
    stamp = f"{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}|{st.st_ino}"
    return f"{f.resolve()}|{stamp}|{sample.hexdigest()[:16]}"


def weights_id(path: Path) -> dict[str, Any]:
    """sha256 over the weight files of a local model: the content, so a copy or a touched file
    keeps its key; memoised by :func:`_memo_key` (a memo miss hashes the file once)."""
    files = sorted(
        p
        for p in path.iterdir()
        if p.suffix in (".safetensors", ".bin", ".gguf", ".pt") and p.is_file()
    )
    memo_path = cache_root() / "weight-hashes.json"
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    digest = hashlib.sha256()
    changed = False
    for f in files:
        memo_key = _memo_key(f)
        if memo_key not in memo:
            h = hashlib.sha256()
            with f.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 22), b""):
                    h.update(chunk)
            # the same file's older entries can never match again
            prefix = str(f.resolve()) + "|"
            memo = {k: v for k, v in memo.items() if not k.startswith(prefix)}
            memo[memo_key] = h.hexdigest()
            changed = True
        digest.update(f.name.encode() + b"\0" + memo[memo_key].encode())
    if changed:
        try:
            memo_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = memo_path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(memo, indent=0, sort_keys=True))
            tmp.replace(memo_path)
        except OSError:
            pass
    return {"weights_sha256": digest.hexdigest()[:32], **text_files_id(path)}


#: The small files besides the weights that change a model's scores: its config, tokenizer and
#: chat template (a fixed tokenizer.json kept serving the old tokenizer's cached scores).
#: A LoRA adapter's config (rank, alpha, targets) too. SentencePiece ``*.model`` and tiktoken
#: ``*.tiktoken`` vocabularies (:data:`SCORING_SUFFIXES`) count as well.
SCORING_FILES = frozenset(
    {
        "config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
        "added_tokens.json", "vocab.json", "vocab.txt", "merges.txt", "chat_template.jinja",
        "chat_template.json", "preprocessor_config.json", "processor_config.json",
        "adapter_config.json",
    }
)  # fmt: skip


#: Vocabulary files known by their suffix: SentencePiece models, tiktoken ranks (Qwen-7B's
#: remote-code tokenizer reads ``qwen.tiktoken``).
SCORING_SUFFIXES = (".model", ".tiktoken")


def text_files_id(path: Path) -> dict[str, Any]:
    """sha256 over the :data:`SCORING_FILES` and :data:`SCORING_SUFFIXES` files of a local
    model; empty when it has none."""
    files = sorted(
        p
        for p in path.iterdir()
        if (p.name in SCORING_FILES or p.suffix in SCORING_SUFFIXES) and p.is_file()
    )
    if not files:
        return {}
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode() + b"\0" + hashlib.sha256(f.read_bytes()).digest())
    return {"files_sha256": digest.hexdigest()[:32]}
