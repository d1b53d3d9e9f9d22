"""``rewardkit check-model``: does rewardkit score this model as its authors do?

For a ``classifier:`` model of any family (docs/families.md) it scores the built-in chat set
(:mod:`rewardkit.modelcheck.pairs`) three ways and compares:

- the reference: the model's own forward, one row at a time, no padding, float32;
- the engine in every layout the model supports (padded, packed, shared) and every dtype asked
  (float32 decides the verdict; bfloat16/int8 are held to a looser tolerance and only warn);
- the model's own forward on whole batches padded on the right and on the left (information:
  how far a naive batched loop drifts, the "scores change with batch size" symptom).

A LoRA/PEFT adapter folder is checked as its base with the adapter merged, and reported as an
adapter over that base (the ``adapter:`` line). It also probes pooling (pairs that differ only after the first end-of-turn token, or only in the
response's last word, must score differently: a model pooling at the first eos is caught and
named), checks that the chat template was applied as a one-pass tokenization of the rendered
conversation would (and that no row starts with two BOS tokens), and counts truncated rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from rewardkit.engine.adapter import Batch, EncodedRow
from rewardkit.engine.config import EngineConfig
from rewardkit.engine.execute import pad_rows
from rewardkit.engine.runner import Engine
from rewardkit.errors import SpecError
from rewardkit.modelcheck.pairs import chat_pairs, chat_queries, probe_pairs
from rewardkit.models.chat_roles import render_chat
from rewardkit.models.device import resolve_device
from rewardkit.models.loading import is_int8
from rewardkit.registry import option_error, parse_spec
from rewardkit.rewards.family_reward import FamilyModelReward
from rewardkit.types import Capability, assistant, prompt_text, stable_hash

#: max |Δ| allowed against the float32 reference, relative to max(1, max |reference|).
TOLERANCE = {"float32": 1e-4, "bfloat16": 0.08, "int8": 0.15}


@dataclass
class Comparison:
    """One way of scoring the set, against the reference."""

    way: str
    dtype: str
    max_delta: float
    tolerance: float | None  # None: information only
    truncated: int
    rows: int

    @property
    def ok(self) -> bool | None:
        return None if self.tolerance is None else bool(self.max_delta <= self.tolerance)


@dataclass
class ModelCheck:
    """Everything ``check-model`` found (:meth:`lines` prints it)."""

    spec: str
    family: str
    pairwise: bool
    comparisons: list[Comparison]
    padding: str
    pooling: str
    template: str
    truncation: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: A LoRA/PEFT adapter folder: what it is and its base (None for a whole model).
    adapter: dict[str, Any] | None = None

    @property
    def verdict(self) -> str:
        if self.problems:
            return "FAIL"
        return "WARN" if self.warnings else "PASS"

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["verdict"] = self.verdict
        for c, row in zip(self.comparisons, out["comparisons"], strict=True):
            row["ok"] = c.ok
        return out

    def lines(self) -> list[str]:
        kind = "pairwise (logit of P(A ≻ B), both orders)" if self.pairwise else "scalar"
        out = [
            f"check-model {self.spec}",
            f"  family: {self.family}, {kind}",
            *([f"  adapter: {adapter_line(self.adapter)}"] if self.adapter else []),
            "  reference: the model's own forward, one row at a time, no padding, float32",
            f"  {'way':<32} {'dtype':<9} {'max|Δ|':>10} {'tolerance':>10} {'truncated':>10}  ok",
        ]
        for c in self.comparisons:
            tol = "info" if c.tolerance is None else f"{c.tolerance:.1e}"
            mark = {True: "yes", False: "NO", None: "-"}[c.ok]
            trunc = f"{c.truncated}/{c.rows}"
            out.append(
                f"  {c.way:<32} {c.dtype:<9} {c.max_delta:>10.2e} {tol:>10} {trunc:>10}  {mark}"
            )
        out += [
            f"  padding: {self.padding}",
            f"  pooling: {self.pooling}",
            f"  chat template: {self.template}",
            f"  truncation: {self.truncation}",
        ]
        out += [f"  problem: {p}" for p in self.problems]
        out += [f"  warning: {w}" for w in self.warnings]
        out.append(f"  verdict: {self.verdict}")
        return out


def adapter_line(adapter: dict[str, Any]) -> str:
    """``check-model``'s line on a LoRA/PEFT adapter folder: what it is, over which base."""
    shape = ", ".join(
        f"{k}={adapter[k]}" for k in ("r", "lora_alpha", "use_dora", "use_rslora") if k in adapter
    )
    kind = f"{adapter.get('peft_type')} {adapter.get('task_type') or 'adapter'}"
    saved = adapter.get("saved_modules")
    head = f"; trained head from the adapter ({', '.join(saved)})" if saved else ""
    return (
        f"{kind} ({shape or 'no rank given'}) over base {adapter.get('base')}, merged into "
        f"the base for scoring (the reference is the merged model's own forward){head}"
    )


def _family_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """(model, options) of ``classifier:MODEL?opts``, or of a bare path or embedded alias."""
    kind, arg, options = parse_spec(spec)
    if "dtype" in options:  # --dtype lists the dtypes compared; one in the spec was overridden
        raise SpecError(
            f"check-model {spec!r}: give the dtypes to compare with --dtype, not dtype= in the "
            "spec (each is checked against the float32 reference)"
        )
    if arg is None:  # a bare path or alias: "smollm2", "./my-rm"
        check_not_a_kind(kind)
        return kind, options
    if kind != "classifier":
        raise SpecError(
            f"check-model checks model-family rewards ('classifier:PATH' or a model path); "
            f"got kind {kind!r}"
        )
    return arg, options


def check_not_a_kind(name: str) -> None:
    """Refuse a bare name that is a reward kind (``default``, ``judge``…) rather than a local
    directory or an embedded model, as ``check-model default:`` is refused (not a misleading
    "not on the Hub")."""
    from pathlib import Path

    from rewardkit.models.embedded import embedded_key
    from rewardkit.registry import kinds

    if Path(name).expanduser().exists() or embedded_key(name) is not None:
        return
    if name == "classifier":
        raise SpecError("check-model classifier: name the model, 'classifier:PATH'")
    if name in {k.kind for k in kinds()}:
        raise SpecError(
            f"check-model checks model-family rewards ('classifier:PATH' or a model path); "
            f"got kind {name!r}"
        )


def _open(model: str, options: dict[str, Any], dtype: str, max_length: int | None):
    from rewardkit.rewards.classifier import build

    opts = {**options, "dtype": dtype, "progress": False}
    if max_length:
        opts["max_length"] = max_length
    try:
        return build(model, **opts)
    except TypeError as exc:  # an option the kind does not take: named, as `eval -r` names it
        raise SpecError(f"check-model {model!r}: {option_error(exc, 'classifier')}") from None


def _items(reward: FamilyModelReward) -> list[Any]:
    """The checked rows: the chat queries, or the chat pairs in both orders."""
    if reward.can(Capability.PAIRWISE):
        pairs = chat_pairs()
        return [*pairs, *[(p, b, a) for p, a, b in pairs]]
    return list(chat_queries())


def _plain(reward: FamilyModelReward, rows: Sequence[EncodedRow]) -> np.ndarray:
    return np.stack([reward.adapter.plain(r).numpy() for r in rows]).astype(np.float64)


def _own_batch(reward: FamilyModelReward, rows: Sequence[EncodedRow], side: str) -> np.ndarray:
    """The model's own forward on one batch padded on ``side``."""
    adapter = reward.adapter
    flip = side == "left"
    seqs = [r.input_ids[::-1] if flip else r.input_ids for r in rows]
    types = None
    if rows[0].token_type_ids is not None:
        types = [(r.token_type_ids or [])[::-1] if flip else r.token_type_ids for r in rows]
    ids, mask, tt = pad_rows(seqs, types, adapter.pad_token_id)
    if flip:
        ids, mask = ids.flip(1), mask.flip(1)
        tt = None if tt is None else tt.flip(1)
    dev = adapter.device()
    starts = torch.full((len(rows),), -1, dtype=torch.long)
    batch = Batch(ids.to(dev), mask.to(dev), None if tt is None else tt.to(dev), starts, rows)
    with torch.inference_mode():
        out = adapter.own_forward(batch).float().cpu().numpy()
    return out.reshape(len(rows), -1).astype(np.float64)


def _delta(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.reshape(len(a), -1) - b.reshape(len(b), -1)))) if len(a) else 0.0


def _pooling(reward: FamilyModelReward, scale: float) -> tuple[str, list[str]]:
    """Probe pairs must score differently; returns (finding, problems)."""
    if reward.can(Capability.PAIRWISE):
        return "not probed (pairwise families read marker or answer tokens)", []
    tok = reward.tokenizer
    eos = tok.eos_token_id
    problems = []
    deltas = []
    for a, b, what in probe_pairs():
        sa, sb = _plain(reward, reward.encode_items([a, b]))
        d = float(np.max(np.abs(sa - sb)))
        deltas.append(d)
        if d <= 1e-6 * scale:
            if "first end-of-turn" in what or "system turn" in what:
                problems.append(
                    f"pooling at the first eos: chats that differ only in {what} get the same score "
                    f"(eos id {eos}, {tok.convert_ids_to_tokens([eos])[0]!r}); the score ignores "
                    "everything after the first end-of-turn token"
                )
            else:
                problems.append(
                    f"pooling before the end: chats that differ only in {what} get the same score"
                )
    if problems:
        return "BROKEN", problems
    return f"ok: every probe pair scores differently (smallest |Δ| {min(deltas):.2e})", []


def _padding(reward: FamilyModelReward) -> str:
    """The pad id the engine pads with (the adapter's, which the model reads), not the
    tokenizer's when the two differ, and where each row is read without a pad of its own."""
    tok = reward.tokenizer
    pad, eos = reward.pad_token_id, tok.eos_token_id
    out = f"pad id {pad}{' == eos' if pad == eos else f', eos id {eos}'}"
    if tok.pad_token_id != pad:
        out += f" (the tokenizer's pad is {tok.pad_token_id})"
    if getattr(reward.adapter, "own_pad", True) is False:
        out += (
            "; the config names no pad id, so each row is read at its last real token (the "
            "attention mask), as the model reads one unpadded row"
        )
    return (
        f"{out}; the tokenizer pads {tok.padding_side}, the engine pads right with an "
        "attention mask"
    )


def _template(reward: FamilyModelReward, rows: Sequence[EncodedRow]) -> tuple[str, list[str]]:
    """Compare the engine's rows with one-pass tokenizations of the rendered conversations."""
    if reward.can(Capability.PAIRWISE):
        return f"{reward.family.input} input built by the family (see docs/families.md)", []
    tok = reward.tokenizer
    queries = chat_queries()
    suffix = [reward.loaded.tokens["reward"]] if "reward" in reward.loaded.tokens else []
    uses_template = reward.use_chat_template
    same = total = 0
    double_bos = 0
    for q, row in zip(queries, rows, strict=True):
        bos = tok.bos_token_id
        if bos is not None and row.input_ids[:2] == [bos, bos]:
            double_bos += 1
        if row.prompt_dropped or row.response_dropped:
            continue
        total += 1
        if uses_template:
            text = render_chat(tok, [*q.prompt, assistant(q.response)], add_generation_prompt=False)
            expected = tok(text, add_special_tokens=False)["input_ids"] + suffix
        else:
            expected = tok(prompt_text(q.prompt), str(q.response))["input_ids"]
        same += list(row.input_ids) == list(expected)
    how = "applied" if uses_template else "none (prompt and response as a text pair)"
    finding = f"{how}; {same}/{total} untruncated rows equal a one-pass tokenization"
    warnings = []
    if same < total:
        warnings.append(
            f"{total - same} rows tokenize differently from the rendered text in one pass "
            "(prompt and response are tokenized apart; scores may differ slightly from the "
            "authors' loop)"
        )
    if double_bos:
        return finding, [f"{double_bos} rows start with two BOS tokens", *warnings]
    return finding, warnings


def verdict_dtypes(dtypes: Sequence[str]) -> tuple[str, ...]:
    """``float32`` and then each other dtype asked, once each, in the order given."""
    if isinstance(dtypes, str):
        dtypes = (dtypes,)
    rest = [d for d in dict.fromkeys(dtypes) if d.strip().lower() not in ("float32", "fp32")]
    return ("float32", *rest)


def check_model(
    spec: str,
    dtypes: Sequence[str] = ("float32", "bfloat16"),
    max_length: int | None = None,
    device: str = "cpu",
) -> ModelCheck:
    """Run every check on ``spec`` (see the module docstring). float32 is always compared
    first, as it decides the verdict (``--dtype bfloat16`` alone checked no float32 engine
    run, and a verdict came from looser tolerances); a dtype asked twice runs once."""
    dtypes = verdict_dtypes(dtypes)
    resolve_device(device, "--device")  # before any weights are read: a bad name costs no load
    model, options = _family_spec(spec)
    options = {**options, "device": device}
    base = _open(model, options, "float32", max_length)
    items = _items(base)
    rows = base.encode_items(items)
    reference = _plain(base, rows)
    scale = max(1.0, float(np.max(np.abs(reference))))
    keys = [stable_hash(["check", i]) for i in range(len(items))]
    comparisons: list[Comparison] = []
    problems: list[str] = []
    warnings: list[str] = []
    truncated_rows = 0
    for dtype in dtypes:
        if is_int8(dtype) and device != "cpu":
            continue
        reward = base if dtype == "float32" else _open(model, options, dtype, max_length)
        longest = max((len(r.input_ids) for r in rows), default=0)
        for layout in ("padded", *sorted(reward.engine.supported_layouts(longest))):
            cfg = EngineConfig(
                **{
                    **reward.config.as_dict(),
                    "layout": layout,
                    "min_shared_prefix": 4,
                    "min_shared_fraction": 0.0,
                    "progress": False,
                    "cache_dir": None,
                }
            )
            engine = Engine(reward.adapter, cfg, reward.device, reward.name)
            run = engine.run(items, keys, reward.encode_items)
            truncated_rows = int(run.truncated.sum())
            tol = TOLERANCE.get(dtype.lower().replace("bf16", "bfloat16"), 0.15) * scale
            comparisons.append(
                Comparison(
                    layout, dtype, _delta(run.values, reference), tol, truncated_rows, len(rows)
                )
            )
    for side in ("right", "left"):
        own = _own_batch(base, rows, side)
        comparisons.append(
            Comparison(
                f"own forward, {side}-padded batch",
                "float32",
                _delta(own, reference),
                None,
                truncated_rows,
                len(rows),
            )
        )
    for c in comparisons:
        if c.ok is False:
            target = problems if c.dtype == "float32" else warnings
            target.append(f"{c.way} in {c.dtype} is {c.max_delta:.2e} from the reference")
    padding = _padding(base)
    head = base.loaded.notes.get("head")
    fresh = head.get("random_init") if isinstance(head, dict) else None
    if fresh:
        warnings.append(
            f"the checkpoint has no trained score head ({', '.join(fresh['params'][:3])}): a "
            f"fresh head from head_seed={fresh['seed']} scores it, not a trained reward model"
        )
    pooling, pool_problems = _pooling(base, scale)
    template, template_notes = _template(base, rows)
    problems += pool_problems
    for note in template_notes:
        (problems if "two BOS" in note else warnings).append(note)
    truncation = (
        f"{truncated_rows} of {len(rows)} rows cut to max_length {base.max_length} "
        f"(policy {base.truncation_policy()}); the reference scored the same cut rows"
    )
    return ModelCheck(
        spec,
        base.family.name,
        base.can(Capability.PAIRWISE),
        comparisons,
        padding,
        pooling,
        template,
        truncation,
        problems,
        warnings,
        base.loaded.notes.get("adapter"),
    )
