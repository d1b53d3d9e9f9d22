"""Scoring rules of the multimodal reward-model benchmarks (docs/methods/D6-multimodal-benchmarks.md — Multimodal RM
benchmarks: MMRB2, MM-RLHF-RewardBench, accuracy-with-ties).

- **MMRB2**: a judge sees each pair in both orders; each order's verdict (the reverse one flipped
  back) is a trial, and accuracy = correct verdicts / valid verdicts. Per pair that is the mean
  of its valid verdicts: forward correct + reverse wrong → 0.5 (:func:`mmrb2_outcome`).
- **MM-RLHF-RewardBench**: ACC = fraction of correct items; ACC+ = fraction of ids (groups) whose
  items are *all* correct (:func:`acc_plus`).
- Accuracy with ties lives in :mod:`rewardkit.evaluate.tieacc` (the same card).

Also the records whose images cannot be read: :func:`drop_cut_short` (image files cut short,
found cheaply before scoring) and :func:`skip_unreadable` (``eval --on-error skip`` dropping
those whose images cannot be read or decoded, each image read once before scoring).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from rewardkit.content import ImageError, ImageRef, images_in
from rewardkit.errors import DataError
from rewardkit.multimodal.files import incomplete_image
from rewardkit.types import Example

T = TypeVar("T")


def verdict(p: float) -> float:
    """1.0 when P(chosen ≻ rejected) > 0.5, 0.0 when < 0.5, NaN when exactly 0.5 or NaN (no
    valid verdict: the judge did not decide). A value outside [0, 1] is no probability: a
    ValueError (3.0 and −2.0 read as a right and a wrong verdict)."""
    if p is None or math.isnan(p) or p == 0.5:
        return math.nan
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"P(chosen ≻ rejected) must be in [0, 1], got {p!r}")
    return 1.0 if p > 0.5 else 0.0


def mmrb2_outcome(p_forward: float, p_reverse: float) -> float:
    """docs/methods/D6-multimodal-benchmarks.md — one pair's MMRB2 score: the mean of its valid order verdicts.

    ``p_forward`` / ``p_reverse`` are P(chosen ≻ rejected) judged with the chosen response in
    the first / the second slot (the reverse verdict already flipped back). Forward correct and
    reverse wrong → 0.5; NaN when neither order gave a valid verdict.
    """
    vs = [v for v in (verdict(p_forward), verdict(p_reverse)) if not math.isnan(v)]
    return float(np.mean(vs)) if vs else math.nan


def mmrb2_verdicts(p_forward: float, p_reverse: float) -> int:
    """How many of a pair's two order verdicts are valid: its weight in the task accuracy,
    which MMRB2 (``evaluate/compute_scores/compute_accuracy.py``) pools over verdicts, not
    pairs (a pair judged in one order only weighs half)."""
    return sum(not math.isnan(verdict(p)) for p in (p_forward, p_reverse))


def mmrb2_accuracy(p_forward: Sequence[float], p_reverse: Sequence[float]) -> dict[str, Any]:
    """docs/methods/D6-multimodal-benchmarks.md — accuracy = correct verdicts / valid verdicts over both orders of every
    pair: ``{"accuracy", "n_pairs", "n_verdicts", "n_valid"}``."""
    v = np.array(
        [verdict(float(p)) for pair in zip(p_forward, p_reverse, strict=True) for p in pair],
        dtype=np.float64,
    )
    valid = v[~np.isnan(v)]
    return {
        "accuracy": float(valid.mean()) if valid.size else math.nan,
        "n_pairs": len(p_forward),
        "n_verdicts": int(v.size),
        "n_valid": int(valid.size),
    }


def acc_plus(groups: Sequence[str], outcomes: Sequence[float | None]) -> dict[str, Any]:
    """docs/methods/D6-multimodal-benchmarks.md — MM-RLHF-RewardBench ACC and ACC+.

    ``outcomes[i]`` is item i's correctness (1 correct, 0 wrong, fractions from ties; None/NaN
    for items not evaluated, left out). ACC = mean over items; ACC+ = fraction of groups whose
    every evaluated item is fully correct (outcome 1).
    """
    by_group: dict[str, list[float]] = {}
    for g, o in zip(groups, outcomes, strict=True):
        if o is None or math.isnan(o):
            continue
        by_group.setdefault(str(g), []).append(float(o))
    items = [o for os_ in by_group.values() for o in os_]
    if not items:
        return {"acc": math.nan, "acc_plus": math.nan, "n_items": 0, "n_groups": 0}
    return {
        "acc": float(np.mean(items)),
        "acc_plus": float(np.mean([all(o == 1.0 for o in os_) for os_ in by_group.values()])),
        "n_items": len(items),
        "n_groups": len(by_group),
    }


def example_images(example: Example) -> list[ImageRef]:
    """Every image an example holds: in its prompt, its responses and its reference."""
    return images_in([example.prompt, example.responses, example.reference])


def split_images(
    examples: Sequence[Example], why: Callable[[ImageRef], str | None]
) -> tuple[list[Example], list[ImageError]]:
    """``examples`` split by ``why`` (what is wrong with an image, None when nothing; asked once
    per distinct image): those holding no such image, and a located error for each of the
    others (its first bad image, with the record the image came from)."""
    verdicts: dict[Any, str | None] = {}
    kept: list[Example] = []
    bad: list[ImageError] = []
    for ex in examples:
        error = None
        for image in example_images(ex):
            key = _image_key(image)
            if key not in verdicts:
                verdicts[key] = why(image)
            reason = verdicts[key]
            if reason is not None:
                error = ImageError(reason, image=image.describe(), origin=image.origin)
                break
        if error is None:
            kept.append(ex)
        else:
            bad.append(error)
    return kept, bad


def _image_key(image: ImageRef) -> Any:
    return next(k for k in (image.path, image.data, id(image.pil)) if k is not None)


def read_failure(image: ImageRef) -> str | None:
    """What keeps ``image`` from being read and decoded (None: it decodes), at the cost of one
    read: a URL is downloaded once and a file read once, and the bytes read give the image's
    :meth:`~rewardkit.content.ImageRef.digest` (what hashing the data and the score cache's keys
    would read it again for), so a run that goes on reads it only to score it."""
    if image.pil is not None:
        try:
            image.load()
        except ImageError as e:
            return e.reason
        return None
    try:
        raw = image.read_bytes()
    except ImageError as e:
        return e.reason
    if image.path is not None:
        # the digest of a file or URL is that of its bytes (ImageRef.digest): kept from this
        # read rather than read (downloaded) again when the data is hashed
        image.remember_digest(raw)
    probe = ImageRef(data=raw, origin=image.origin)
    try:
        probe.load()
    except ImageError as e:  # the same message load() gives, naming the image, not its bytes
        return e.reason.replace(probe.describe(), image.describe(), 1)
    return None


def _named_failure(named: DataError, checked: set[Any]) -> Callable[[ImageRef], str | None]:
    """What keeps an image from decoding when scoring raised ``named`` (None: it decodes): the
    image the error names fails; an image :func:`read_failure` already read (``checked``) is
    not read again; any other is decoded (a URL is not downloaded)."""
    image_name = named.image if isinstance(named, ImageError) else None

    def why(image: ImageRef) -> str | None:
        if image_name is not None and image.describe() == image_name:
            return named.reason
        if _image_key(image) in checked or (image.path is not None and "://" in image.path):
            return None
        try:
            image.load()
        except ImageError as e:
            return e.reason
        return None

    return why


def _report_skipped(bad: list[ImageError], what: str, skipped_out: list | None) -> None:
    """One warning for the records dropped (as the loaders give), their errors to ``skipped_out``."""
    if not bad:
        return
    warnings.warn(f"skipped {len(bad)} record(s) {what}; first: {bad[0]}", stacklevel=3)
    if skipped_out is not None:
        skipped_out.extend(bad)


def drop_cut_short(
    examples: Sequence[Example], on_error: str, skipped_out: list | None = None
) -> list[Example]:
    """``examples`` less those holding an image file cut short (:func:`incomplete_image`: each
    file's end read, cheaply), found before any model loads: ``on_error="raise"`` raises the
    first one's located :class:`ImageError`; ``"skip"`` drops them with one warning."""
    kept, bad = split_images(examples, incomplete_image)
    if bad and on_error != "skip":
        raise bad[0]
    _report_skipped(bad, "whose image files are cut short", skipped_out)
    return kept


def skip_unreadable(
    run: Callable[[list[Example]], T],
    examples: Sequence[Example],
    skipped_out: list | None = None,
) -> T:
    """``run(examples)``, dropping the examples whose images cannot be read or decoded
    (``on_error="skip"`` at scoring time: loading does not read pixels).

    Every distinct image is read and decoded once, before ``run`` (:func:`read_failure`: a bad
    image costs one failed read, a URL one download, whose bytes also give its digest), the
    examples holding one that fails are dropped with one warning like the loaders' (file,
    line, what is wrong), and ``run`` is called once on the rest. When ``run`` still raises a
    :class:`DataError` that an image explains (a reward failing on an image that decodes), the
    examples holding that image are dropped and ``run`` is called again; an error that no image
    explains is raised as it is. The dropped records' errors go to ``skipped_out``.

    Only verdicts (one per distinct image) are kept, never the images' bytes or pixels.
    """
    kept, dropped = split_images(examples, read_failure)
    checked = {_image_key(image) for ex in kept for image in example_images(ex)}
    while True:
        try:
            result = run(kept)
            break
        except DataError as err:
            kept, bad = split_images(kept, _named_failure(err, checked))
            if not bad:
                raise
            dropped += bad
    _report_skipped(dropped, "whose images cannot be decoded", skipped_out)
    return result
