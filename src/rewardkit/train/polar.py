"""POLAR training on frozen embeddings (docs/methods/A9-polar.md).

Pre-training: triples ``(x, y_ref, y⁺, y⁻)`` where ``y⁺`` and ``y_ref`` come from the same policy
and ``y⁻`` from another, ``L = −log σ(r(x, y_ref, y⁺) − r(x, y_ref, y⁻))``. Our data hold one
answer per (policy, prompt), so the reference is the same policy's answer to *another* prompt
([design]): the model learns to recognise a policy's manner, not to copy an answer.
Fine-tuning: preference pairs with a reference answer, ``(x, ref, y_c, y_r)``, same loss.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from rewardkit.data.location import Location, describe
from rewardkit.data.readers import iter_file
from rewardkit.errors import DataError, SpecError
from rewardkit.outputs import atomic_json
from rewardkit.rewards.default_rm import FeatureHead, prompt_feature_text
from rewardkit.rewards.polar import (
    PolarEncoder,
    load_polar,
    reference_text,
    save_polar,
)
from rewardkit.train.common import check_finite_loss
from rewardkit.train.finite import check_trained
from rewardkit.train.losses import bt_loss
from rewardkit.train.method_runs import check_settings, run_directory


class Triple(NamedTuple):
    """A prompt, a reference, and a better and a worse candidate."""

    prompt: str
    reference: str
    better: str
    worse: str


@dataclass
class PolarConfig:
    """Training settings (the card's 1 epoch at lr 2e-5 is for a 7B model; a small head on
    frozen features takes a higher rate and a few hundred steps)."""

    inner: int = 256
    steps: int = 400
    lr: float = 1e-3
    batch_size: int = 64
    seed: int = 0
    max_length: int = 256
    progress: bool = False

    def __post_init__(self) -> None:
        counts = ("inner", "steps", "batch_size", "max_length")
        check_settings(self, "PolarConfig", counts=counts, rates=("lr",))


#: Most pre-training triples one run may draw (samples × ``per_sample``): each holds about
#: 12 KB of features (two candidates × 4 × 384 float32), so 50,000 take some 600 MB.
MAX_TRIPLES = 50_000

#: The fields of one pre-training sample (a JSONL line of ``polar pretrain --data FILE``).
SAMPLE_FIELDS = ("prompt_id", "prompt", "policy", "response")


def _records(path: Path) -> Iterator[tuple[Location, dict[str, Any]]]:
    """Records of a data file through the hardened readers (bad bytes, bad or hostile JSON,
    non-objects are DataErrors naming the file and line)."""
    for loc, rec in iter_file(path, path.name):
        if isinstance(rec, DataError):
            raise rec
        yield loc, rec


def _field(rec: dict[str, Any], loc: Location, name: str, kinds: tuple[type, ...]) -> Any:
    if name not in rec:
        raise loc.error("missing field", field=name)
    value = rec[name]
    if isinstance(value, bool) or not isinstance(value, kinds):
        want = "text" if kinds == (str,) else "text or an integer"
        raise loc.error(f"expected {want}, got {describe(value)}", field=name)
    return value


def sample_from_record(rec: dict[str, Any], loc: Location) -> dict[str, str]:
    """One ``{prompt_id, prompt, policy, response}`` sample, every field checked (``prompt_id``
    may be an integer; the others are text), or a DataError naming file, line and field."""
    out = {"prompt_id": str(_field(rec, loc, "prompt_id", (str, int)))}
    for name in SAMPLE_FIELDS[1:]:
        out[name] = _field(rec, loc, name, (str,))
    return out


def read_samples(path: str | Path) -> list[dict[str, str]]:
    """Pre-training samples from a data file (JSONL of ``{prompt_id, prompt, policy,
    response}``; also JSON, CSV, Parquet); every problem names the file and line (or row)."""
    p = Path(path)
    if not p.is_file():  # a FIFO blocked for ever, /dev/zero filled memory
        from rewardkit.data.sources import file_type

        why = f"not a regular file ({file_type(p)})" if p.exists() else "no such file or directory"
        raise DataError(why, path=str(p))
    rows = [sample_from_record(rec, loc) for loc, rec in _records(p)]
    if not rows:
        raise DataError(
            "no samples; expected lines of {prompt_id, prompt, policy, response}", path=str(p)
        )
    return rows


def mtbench_samples(directory: str | Path, turn: int = 0) -> list[dict[str, str]]:
    """``{"prompt_id", "prompt", "policy", "response"}`` rows from an MT-Bench directory
    (``question.jsonl`` and ``model_answer/<model>.jsonl``; first turn by default)."""
    d = Path(directory)
    qfile = d / "question.jsonl"
    if not qfile.is_file() or not (d / "model_answer").is_dir():
        raise DataError(f"{d}: expected question.jsonl and model_answer/ (MT-Bench layout)")
    questions = {}
    for loc, q in _records(qfile):
        qid = _field(q, loc, "question_id", (str, int))
        turns = q.get("turns")
        if not isinstance(turns, list) or len(turns) <= turn or not isinstance(turns[turn], str):
            raise loc.error(f"expected a list of turns as text (turn {turn})", field="turns")
        questions[qid] = turns[turn]
    rows = []
    for f in sorted((d / "model_answer").glob("*.jsonl")):
        for loc, a in _records(f):
            qid = _field(a, loc, "question_id", (str, int))
            choices = a.get("choices")
            text = ""
            if choices:
                try:
                    text = choices[0]["turns"][turn]
                except (KeyError, IndexError, TypeError):
                    raise loc.error(
                        f"expected choices[0].turns[{turn}] (MT-Bench answer)", field="choices"
                    ) from None
            if qid in questions and isinstance(text, str) and text.strip():
                rows.append(
                    {
                        "prompt_id": str(qid),
                        "prompt": questions[qid],
                        "policy": f.stem,
                        "response": text,
                    }
                )
    return rows


def policy_triples(
    samples: list[dict[str, str]], per_sample: int = 1, seed: int = 0
) -> list[Triple]:
    """Pre-training triples: for each sample ``y⁺`` of policy A on prompt x, ``per_sample`` draws
    of another policy's answer ``y⁻`` to x, with A's answer to another prompt as the reference.
    At most :data:`MAX_TRIPLES` draws (checked before any is made)."""
    if len(samples) * per_sample > MAX_TRIPLES:
        raise DataError(
            f"{len(samples):,} samples × {per_sample:,} per sample = "
            f"{len(samples) * per_sample:,} triples, more than the {MAX_TRIPLES:,} one run may "
            "draw (each holds ~12 KB of features); use a smaller --per-sample or fewer samples"
        )
    by_prompt: dict[str, list[dict[str, str]]] = {}
    by_policy: dict[str, list[dict[str, str]]] = {}
    for i, s in enumerate(samples):
        if not isinstance(s, dict) or any(k not in s for k in SAMPLE_FIELDS):
            raise DataError(
                f"sample {i}: expected an object with {', '.join(SAMPLE_FIELDS)}, got {describe(s)}"
            )
        by_prompt.setdefault(s["prompt_id"], []).append(s)
        by_policy.setdefault(s["policy"], []).append(s)
    rng = np.random.default_rng(seed)
    out = []
    for s in samples:
        others = [o for o in by_prompt[s["prompt_id"]] if o["policy"] != s["policy"]]
        refs = [o for o in by_policy[s["policy"]] if o["prompt_id"] != s["prompt_id"]]
        if not others or not refs:
            continue
        for _ in range(per_sample):
            neg = others[int(rng.integers(len(others)))]
            ref = refs[int(rng.integers(len(refs)))]
            out.append(Triple(s["prompt"], ref["response"], s["response"], neg["response"]))
    if not out:
        raise DataError("policy triples need at least two policies answering the same prompts")
    return out


def preference_triples(examples: list[Any]) -> list[Triple]:
    """Fine-tuning triples from preference examples that carry a reference answer."""
    out = []
    for ex in examples:
        if ex.is_tie:
            continue
        q = ex.queries()[0]
        ref = reference_text(q)
        if ref is None:
            continue
        p = prompt_feature_text(q)
        out.extend(
            Triple(p, ref, str(ex.responses[c]), str(ex.responses[r]))
            for c in ex.chosen
            for r in ex.rejected
        )
    if not out:
        raise DataError("POLAR fine-tuning needs preference pairs with a 'reference' answer")
    return out


def triple_features(
    encoder: PolarEncoder, triples: list[Triple]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features of the better and the worse candidate of each triple."""
    p = [t.prompt for t in triples]
    r = [t.reference for t in triples]
    fb = encoder.features(p, r, [t.better for t in triples])
    fw = encoder.features(p, r, [t.worse for t in triples])
    return torch.from_numpy(fb), torch.from_numpy(fw)


def fit_polar(
    fb: torch.Tensor, fw: torch.Tensor, cfg: PolarConfig, head: FeatureHead | None = None
) -> tuple[FeatureHead, list[float]]:
    """BT on ``r(better) − r(worse)``; a new head, or a copy of ``head`` (fine-tuning)."""
    import copy

    from tqdm.auto import tqdm

    torch.manual_seed(cfg.seed)
    model = copy.deepcopy(head) if head is not None else FeatureHead(fb.shape[1], "mlp", cfg.inner)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    hist: list[float] = []
    for step in tqdm(range(cfg.steps), desc="train POLAR", disable=not cfg.progress):
        idx = torch.randint(0, len(fb), (min(cfg.batch_size, len(fb)),), generator=gen)
        loss = bt_loss(model(fb[idx])[:, 0], model(fw[idx])[:, 0])
        hist.append(float(loss.detach()))
        check_finite_loss(hist[-1], step + 1, "the POLAR training loss")
        opt.zero_grad()
        loss.backward()
        opt.step()
    check_trained(model, "POLAR")
    return model.eval(), hist


def triple_accuracy(head: FeatureHead, fb: torch.Tensor, fw: torch.Tensor) -> np.ndarray:
    """Per-triple correctness (1 / 0, ½ on a tie) of ``r(better) > r(worse)``."""
    with torch.no_grad():
        d = (head(fb) - head(fw))[:, 0].numpy()
    return np.where(d > 0, 1.0, np.where(d < 0, 0.0, 0.5))


def train_polar(
    triples: list[Triple],
    output_dir: str | Path,
    cfg: PolarConfig | None = None,
    base: str | Path | None = None,
    stage: str = "pretrain",
) -> dict[str, Any]:
    """Fit (``base`` None) or fine-tune the POLAR head in ``base`` on ``triples``; write
    ``polar:DIR`` to ``output_dir`` (not ``base``; locked for the run, so a second run into it
    is refused; each file replaced atomically); returns the metadata."""
    from rewardkit.engine.config import EngineConfig

    cfg = cfg or PolarConfig()
    if not triples:
        raise DataError("POLAR training needs at least one triple")
    if stage not in ("pretrain", "finetune"):
        raise SpecError(f"POLAR stage must be 'pretrain' or 'finetune', got {stage!r}")
    out = Path(output_dir).expanduser()
    if base is not None and out.resolve() == Path(base).expanduser().resolve():
        raise SpecError(f"{out}: the output directory is the base model; give another --out")
    head, base_meta = load_polar(base) if base is not None else (None, {})
    with run_directory(out, "POLAR model"):  # a second run into it is refused
        enc = PolarEncoder(
            base_meta.get("encoder", "minilm"),
            EngineConfig(
                max_length=int(base_meta.get("max_length", cfg.max_length)),
                progress=cfg.progress,
            ),
        )
        fb, fw = triple_features(enc, triples)
        model, hist = fit_polar(fb, fw, cfg, head)
        meta = {
            "encoder": base_meta.get("encoder", "minilm"),
            "in_dim": int(fb.shape[1]),
            "inner": int(base_meta.get("inner", cfg.inner)),
            "max_length": int(base_meta.get("max_length", cfg.max_length)),
            "stages": [*base_meta.get("stages", []), {"stage": stage, "n_triples": len(triples)}],
            "train_accuracy": float(triple_accuracy(model, fb, fw).mean()),
            "final_loss": float(np.mean(hist[-max(1, len(hist) // 10) :])),
            "config": asdict(cfg),
        }
        save_polar(out, model, meta)
        atomic_json(out / "loss_history.json", hist)
    return meta
