"""Card E3 — Anyprefer: judge-scored pair synthesis with pair-quality feedback and prompt
rewriting (docs/methods/E3-anyprefer.md).

One prompt, at most ``max_rounds`` rounds: the target samples ``k`` responses, the judge (any
:class:`~rewardkit.types.Reward`) scores them against the ORIGINAL prompt in one pass, (best,
worst) form the pair (:func:`~rewardkit.inference.mining.mine_pairs`: NaN never chosen, a gap
> 0, identical texts never paired), ``pair_reward`` rates the pair, and a rating below
``threshold`` (or no pair) sends numbers-only feedback to ``rewrite``, which may only add a
system instruction for the target: the original messages are kept verbatim, so the pair stays
a pair for the original prompt. No response text reaches the rewriter or a prompt. The
resumable CLI run is in :func:`run_anyprefer` (rows checked and resumed by
:mod:`rewardkit.inference.run`)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rewardkit.data.location import describe
from rewardkit.inference.best_of_n import score_candidates
from rewardkit.inference.mining import mine_pairs
from rewardkit.inference.run import RowsFile, load_done
from rewardkit.types import Example, Message, Query, Reward, as_messages

Target = Callable[[list[Message], int, int], Sequence[str]]
PairReward = Callable[[list[Message], str, str, float, float], float]

#: The instruction the ``hint`` rewriter adds (a system message; fixed, so deterministic).
HINT = (
    "Answer carefully. Work through the problem step by step, check every calculation, "
    "and state the final answer clearly on the last line."
)
#: An ``llm`` rewrite longer than this (characters) is refused (the previous prompt is kept).
MAX_INSTRUCTION_CHARS = 1000
#: The fixed meta-prompt of the ``llm`` rewriter. It holds the original question, the current
#: instruction and the numbers-only feedback, never a response text.
META_PROMPT = (
    "You write the system instruction for an assistant. The assistant answered the question "
    "below several times; a judge scored the answers, and the best and the worst answer were "
    "not a clear enough pair (feedback below). Write a new system instruction of at most 60 "
    "words that makes the assistant answer more carefully and correctly. Do not answer the "
    "question. Reply with the instruction only.\n\n"
    "Question:\n{question}\n\nCurrent instruction:\n{instruction}\n\nFeedback:\n{feedback}"
)


@dataclass(frozen=True)
class Feedback:
    """What a failed round tells the rewriter: numbers only (no response text)."""

    round: int  # 1-based round that failed
    max_rounds: int
    r_pair: float  # NaN: no pair
    threshold: float
    score_chosen: float
    score_rejected: float
    scored: int  # candidates the judge scored (not NaN)
    k: int
    has_pair: bool  # False: no two scored, different candidates with a gap
    original: list[Message]
    instruction: str  # the instruction added to the original prompt so far ("" for none)

    def text(self) -> str:
        """The feedback as the ``llm`` rewriter reads it."""
        head = f"Round {self.round} of {self.max_rounds}: "
        if not self.has_pair:
            return head + (
                f"no pair: of {self.k} answers {self.scored} were scored, and no two different "
                "answers had different scores."
            )
        if math.isnan(self.r_pair):
            return head + "the pair reward does not apply to the best and worst answers."
        return head + (
            f"pair quality {self.r_pair:.4g} is below the threshold {self.threshold:.4g} "
            f"(judge score of the best answer {self.score_chosen:.4g}, of the worst "
            f"{self.score_rejected:.4g}; {self.scored} of {self.k} answers scored)."
        )


@dataclass(frozen=True)
class Round:
    """One round of the loop, as the trace keeps it."""

    round: int  # 1-based
    prompt: list[Message]  # what the target was given
    candidates: list[str]
    scores: list[float]
    chosen: int | None
    rejected: int | None
    r_pair: float  # NaN: no pair (or the pair reward does not apply)
    passed: bool
    feedback: str | None = None  # sent to the rewriter after this round (None: none sent)

    def to_json(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "prompt": self.prompt,
            "candidates": [
                {"text": c, "score": _num(s)}
                for c, s in zip(self.candidates, self.scores, strict=True)
            ],
            "chosen": self.chosen,
            "rejected": self.rejected,
            "r_pair": _num(self.r_pair),
            "passed": self.passed,
            "feedback": self.feedback,
        }


@dataclass(frozen=True)
class AnyPreferResult:
    """The outcome of one prompt: the pair (None: no round passed, unless ``keep_failed``) and
    every round (candidates, judge scores, R_pair, the prompt used)."""

    prompt: list[Message]
    pair: Example | None
    rounds: list[Round] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.rounds) and self.rounds[-1].passed

    def to_json(self) -> dict[str, Any]:
        pair = self.pair
        return {
            "rounds": [r.to_json() for r in self.rounds],
            "passed": self.passed,
            "pair": None
            if pair is None
            else {
                "id": pair.id,
                "chosen": pair.responses[0],
                "rejected": pair.responses[1],
                "meta": {k: _num(v) if isinstance(v, float) else v for k, v in pair.meta.items()},
            },
        }


# -- pair rewards ---------------------------------------------------------------------------------


def margin(prompt: list[Message], chosen: str, rejected: str, s_c: float, s_r: float) -> float:
    """``R_pair = s_c − s_r``: the judge's own margin."""
    return float(s_c) - float(s_r)


def agreement(reward: Reward, reference: Any = None) -> PairReward:
    """``R_pair = min(s_c − s_r, a_c − a_r)`` with ``a`` a second reward's scores of both sides
    (one pass): the pair is as good as the smaller margin, negative when the second reward
    disagrees with the judge; NaN (fails) when it does not apply to either side."""

    def pair_reward(
        prompt: list[Message], chosen: str, rejected: str, s_c: float, s_r: float
    ) -> float:
        a = reward.score(
            [Query(list(prompt), chosen, reference), Query(list(prompt), rejected, reference)]
        )
        a_c, a_r = float(a[0]), float(a[1])
        if any(math.isnan(x) for x in (a_c, a_r, s_c, s_r)):
            return math.nan
        return min(float(s_c) - float(s_r), a_c - a_r)

    return pair_reward


# -- rewriters ------------------------------------------------------------------------------------


def with_instruction(original: list[Message], instruction: str) -> list[Message]:
    """The original messages with ``instruction`` added as system text: appended (after a
    blank line) to the original's own system message, else a system message put first."""
    msgs = [dict(m) for m in original]
    if not instruction:
        return msgs  # type: ignore[return-value]
    if msgs and msgs[0]["role"] == "system" and isinstance(msgs[0]["content"], str):
        msgs[0]["content"] = msgs[0]["content"] + "\n\n" + instruction
        return msgs  # type: ignore[return-value]
    return [{"role": "system", "content": instruction}, *msgs]  # type: ignore[list-item]


def added_instruction(original: list[Message], prompt: list[Message]) -> str:
    """The instruction ``prompt`` adds to ``original`` (:func:`with_instruction`'s inverse);
    ValueError when ``prompt`` does not keep the original messages verbatim."""
    orig = [dict(m) for m in original]
    got = [dict(m) for m in prompt]
    if got == orig:
        return ""
    first = got[0] if got else {}
    text = first.get("content")
    if first.get("role") == "system" and isinstance(text, str) and text:
        if orig and orig[0]["role"] == "system" and isinstance(orig[0]["content"], str):
            head = orig[0]["content"] + "\n\n"
            if got[1:] == orig[1:] and text.startswith(head) and len(text) > len(head):
                return text[len(head) :]
        elif got[1:] == orig:
            return text
    raise ValueError(
        "a rewrite may only add a system instruction: the original prompt's messages must be "
        "kept verbatim (the pair is a pair for the original prompt)"
    )


def rewrite_none(prompt: list[Message], feedback: Feedback) -> list[Message]:
    """``none``: the same prompt; the next round differs because its seed does."""
    return list(prompt)


def rewrite_hint(prompt: list[Message], feedback: Feedback) -> list[Message]:
    """``hint``: the original prompt with the fixed :data:`HINT` instruction."""
    return with_instruction(feedback.original, HINT)


def sanitize_instruction(text: Any, previous: str) -> str:
    """An ``llm`` rewrite as an instruction: stripped; empty, not text or over
    :data:`MAX_INSTRUCTION_CHARS` → ``previous``."""
    if not isinstance(text, str):
        return previous
    text = text.strip()
    return text if text and len(text) <= MAX_INSTRUCTION_CHARS else previous


def question_text(original: list[Message]) -> str:
    """The original prompt's non-system text, as the meta-prompt quotes it."""
    return "\n\n".join(str(m["content"]) for m in original if m["role"] != "system")


def llm_rewriter(policy: Callable[[list[Message], int], Sequence[str]]) -> Callable[..., Any]:
    """``llm``: ``policy`` (e.g. :meth:`Policy.sample`) answers the fixed :data:`META_PROMPT`
    with a new system instruction; the result is :func:`sanitize_instruction`-ed and added to
    the ORIGINAL messages (:func:`with_instruction`), which are never rewritten."""

    def rewrite(prompt: list[Message], feedback: Feedback) -> list[Message]:
        meta = META_PROMPT.format(
            question=question_text(feedback.original),
            instruction=feedback.instruction or "(none)",
            feedback=feedback.text(),
        )
        out = list(policy([{"role": "user", "content": meta}], 1))
        new = sanitize_instruction(out[0] if out else None, feedback.instruction)
        return with_instruction(feedback.original, new)

    return rewrite


REWRITERS = ("none", "hint", "llm")


# -- the loop -------------------------------------------------------------------------------------


def anyprefer_round(
    prompt: str | list[Message],
    target: Target,
    judge: Reward,
    pair_reward: PairReward = margin,
    rewrite: Callable[[list[Message], Feedback], list[Message]] = rewrite_none,
    k: int = 4,
    max_rounds: int = 3,
    threshold: float = 0.5,
    *,
    reference: Any = None,
    id: str = "prompt",
    keep_failed: bool = False,
) -> AnyPreferResult:
    """Card E3 — run the loop on one prompt (module doc). ``target(prompt, k, round)`` samples
    ``k`` responses (``round`` 0-based, to reseed); the pair passes when
    ``R_pair ≥ threshold``. With ``keep_failed`` a prompt no round passed keeps its best-rated
    pair, flagged ``meta["passed"] = False``."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise ValueError(f"k must be an integer >= 2 (a pair needs two candidates), got {k!r}")
    if isinstance(max_rounds, bool) or not isinstance(max_rounds, int) or max_rounds < 1:
        raise ValueError(f"max_rounds must be an integer >= 1, got {max_rounds!r}")
    if not isinstance(threshold, int | float) or not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    original = as_messages(prompt)
    current: list[Message] = list(original)  # type: ignore[arg-type]
    rounds: list[Round] = []
    pairs: dict[int, Example] = {}
    for r in range(max_rounds):
        cands = list(target(current, k, r))
        if len(cands) != k or not all(isinstance(c, str) for c in cands):
            raise ValueError(f"target returned {len(cands)} candidates, expected {k} texts")
        scores = score_candidates(judge, [original], [cands], [reference])[0]  # type: ignore[list-item]
        if any(math.isinf(x) for x in scores):  # an infinite margin would pass any threshold
            raise ValueError(
                f"judge {judge.name!r} scored ±inf on prompt {id!r} (round {r + 1}): a reward "
                "must be finite, or NaN where it does not apply"
            )
        mined = mine_pairs(original, cands, scores, id=id, reference=reference, source="anyprefer")  # type: ignore[arg-type]
        c = j = None
        r_pair = math.nan
        if mined:
            pair = mined[0]
            c, j = pair.meta["candidate_chosen"], pair.meta["candidate_rejected"]
            r_pair = float(pair_reward(original, cands[c], cands[j], scores[c], scores[j]))  # type: ignore[arg-type]
            if math.isinf(r_pair):
                raise ValueError(f"the pair reward rated prompt {id!r}'s pair {r_pair}: not finite")
            pairs[r] = pair
        passed = not math.isnan(r_pair) and r_pair >= threshold
        fb = None
        if not passed and r + 1 < max_rounds:
            ok = [s for s in scores if not math.isnan(s)]
            fb = Feedback(
                r + 1,
                max_rounds,
                r_pair,
                float(threshold),
                float(scores[c]) if c is not None else (max(ok) if ok else math.nan),
                float(scores[j]) if j is not None else (min(ok) if ok else math.nan),
                len(ok),
                k,
                c is not None,
                original,
                added_instruction(original, current),  # type: ignore[arg-type]
            )
        rounds.append(
            Round(
                r + 1,
                current,
                cands,
                [float(s) for s in scores],
                c,
                j,
                r_pair,
                passed,
                fb.text() if fb else None,
            )
        )
        if passed or fb is None:
            break
        new = rewrite(current, fb)
        added_instruction(original, new)  # a rewrite that changed the original is refused
        current = new
    best = _pick(rounds, pairs, keep_failed)
    pair = None
    if best is not None:
        rd = rounds[best]
        pair = replace(
            pairs[best],
            id=f"{id}#r{rd.round}:{rd.chosen}>{rd.rejected}",
            meta={
                **pairs[best].meta,
                "r_pair": rd.r_pair,
                "round": rd.round,
                "rounds": len(rounds),
                "passed": rd.passed,
            },
        )
    return AnyPreferResult(original, pair, rounds)  # type: ignore[arg-type]


def _pick(rounds: list[Round], pairs: dict[int, Example], keep_failed: bool) -> int | None:
    """The round whose pair is returned: the passing one; with ``keep_failed`` else the
    highest-rated (first on ties)."""
    if rounds and rounds[-1].passed:
        return len(rounds) - 1
    if not keep_failed:
        return None
    rated = [i for i in pairs if not math.isnan(rounds[i].r_pair)]
    return max(rated, key=lambda i: (rounds[i].r_pair, -i)) if rated else None


def _num(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


# -- resumable runs (rows checked and resumed as ``bon``'s: rewardkit.inference.run) -------------


def run_anyprefer(
    items: Sequence[Any],
    solve: Callable[[Any], AnyPreferResult],
    trace: str | os.PathLike[str],
    run_key: str,
    progress: bool = True,
) -> dict[str, Any]:
    """Run :func:`anyprefer_round` (through ``solve(item)``) on each prompt item not yet in
    ``trace`` and append its row at once (flushed): ``id``, ``prompt``, ``reference``, ``run``,
    ``candidates`` (the last round's), ``rounds``, ``passed``, ``pair``. A rerun skips the
    prompts done, drops a line cut short by a kill and refuses a file of other settings or
    prompts (:func:`rewardkit.inference.run.load_done`). Returns counts."""
    from rewardkit.inference.run import _progress, check_same_prompt, check_same_prompts
    from rewardkit.outputs import exclusive

    path = Path(trace)
    path.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(path, "--trace"):
        done = load_trace(path, run_key)
        for it in items:
            if (row := done.get(it.id)) is not None:
                check_same_prompt(row, it, path, TRACE_ROWS)
        check_same_prompts(done, items, path, TRACE_ROWS)
        todo = [it for it in items if it.id not in done]
        with path.open("a", encoding="utf-8") as fh:
            for it in _progress(todo, progress):
                res = solve(it)
                row = {
                    "id": it.id,
                    "prompt": it.prompt,
                    "reference": it.reference,
                    "candidates": res.rounds[-1].to_json()["candidates"],
                    **res.to_json(),
                    "run": run_key,
                }
                try:
                    fh.write(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")
                    fh.flush()
                except OSError as exc:  # a full disk or a size limit: say which file
                    raise OSError(exc.errno, exc.strerror, str(path)) from None
    return {"prompts": len(items), "skipped_done": len(items) - len(todo), "generated": len(todo)}


def check_trace_row(row: dict[str, Any], bad: Callable[..., Exception]) -> None:
    """A ``--trace`` row's ``rounds``, ``passed`` and ``pair`` (``bon``'s fields come first)."""

    def need(ok: bool, field: str, want: str, got: Any) -> None:
        if not ok:
            raise bad(f"expected {want}, got {describe(got)}", field)

    rounds, passed, pair = row.get("rounds"), row.get("passed"), row.get("pair")
    ok = isinstance(rounds, list) and rounds and all(isinstance(r, dict) for r in rounds)
    need(bool(ok), "rounds", "a list of round objects", rounds)
    for i, rd in enumerate(rounds):
        cands = rd.get("candidates")
        ok = isinstance(cands, list) and all(isinstance(c, dict) and "score" in c for c in cands)
        need(ok, f"rounds[{i}].candidates", "a list of {text, score} objects", cands)
    need(isinstance(passed, bool), "passed", "true or false", passed)
    need(pair is not None or not passed, "pair", "the pair of a passed prompt", pair)
    need(pair is None or isinstance(pair, dict), "pair", "an object or null", pair)
    if isinstance(pair, dict):
        for name in ("id", "chosen", "rejected"):
            need(isinstance(pair.get(name), str), f"pair.{name}", "text", pair.get(name))
        need(isinstance(pair.get("meta"), dict), "pair.meta", "an object", pair.get("meta"))


#: How ``--trace`` is named in the shared row checks' errors (:mod:`rewardkit.inference.run`).
TRACE_ROWS = RowsFile(
    option="--trace",
    row="rewardkit curate anyprefer --trace row",
    rows="anyprefer rows",
    settings="policy, k, max-rounds, threshold, sampling, judge, pair-reward, rewrite or keep-failed",
    check=check_trace_row,
)


def load_trace(path: str | os.PathLike[str], run_key: str | None) -> dict[str, dict[str, Any]]:
    """:func:`rewardkit.inference.run.load_done` on a ``--trace`` (``run_key=None``: check
    only), its errors naming ``--trace`` and anyprefer's settings."""
    return load_done(Path(path), run_key, TRACE_ROWS)


def pairs_from_rows(rows: Sequence[dict[str, Any]]) -> list[Example]:
    """The pairs of trace rows (rows without one give none) as examples for the writers; a
    pair an earlier row gave already (a repeated prompt: the same samples) is written once."""
    out, seen = [], set()
    for row in rows:
        p = row.get("pair")
        if p is None:
            continue
        key = json.dumps(
            [row["prompt"], row.get("reference"), p["chosen"], p["rejected"]], default=str
        )
        if key in seen:
            continue
        seen.add(key)
        out.append(
            Example(
                id=p["id"],
                prompt=row["prompt"],
                responses=[p["chosen"], p["rejected"]],
                chosen=[0],
                source="anyprefer",
                reference=row.get("reference"),
                meta=dict(p["meta"]),
            )
        )
    return out


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``kept`` (pairs that passed), ``kept_failed`` (flagged, ``keep_failed``), ``dropped``
    and ``rounds`` (histogram: rounds taken → prompts)."""
    hist: dict[str, int] = {}
    for row in rows:
        n = str(len(row["rounds"]))
        hist[n] = hist.get(n, 0) + 1
    kept = sum(1 for r in rows if r["passed"])
    flagged = sum(1 for r in rows if not r["passed"] and r.get("pair") is not None)
    return {
        "kept": kept,
        "kept_failed": flagged,
        "dropped": len(rows) - kept - flagged,
        "rounds": dict(sorted(hist.items(), key=lambda kv: int(kv[0]))),
    }
