"""Hugging Face datasets: a ``save_to_disk`` directory, or ``hf:org/name[:split]`` from the hub.

Both go through :func:`iter_dataset`, so local directories and hub datasets share one record path.
``datasets`` is imported only here, and only when such a source is loaded.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rewardkit.data.location import Location
from rewardkit.errors import DataError, MissingDependencyError

#: Files that mark a directory written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``.
MARKERS = ("dataset_dict.json", "state.json")


def is_saved_dataset(path: Path) -> bool:
    """Whether ``path`` is a directory written by ``save_to_disk``."""
    return any((path / m).is_file() for m in MARKERS)


def _datasets() -> Any:
    try:
        import datasets
    except ImportError as e:
        raise MissingDependencyError(
            "reading Hugging Face datasets needs datasets: pip install 'rewardkit[hf]'"
        ) from e
    return datasets


def _pick_split(ds: Any, split: str | None, where: str) -> tuple[Any, str | None]:
    """The split to read of a loaded dataset: a DatasetDict's ``split`` (or its only split);
    a single Dataset as it is (``load_dataset`` already picked ``split``)."""
    if not hasattr(ds, "keys"):  # a single Dataset
        return ds, None
    splits = list(ds.keys())
    if split is None:
        if len(splits) == 1:
            return ds[splits[0]], splits[0]
        raise DataError(
            f"has splits {', '.join(splits)}; read one as {where}:SPLIT (e.g. {where}:{splits[0]};"
            " split= in Python)",
            path=where,
        )
    if split not in splits:
        raise DataError(f"no split {split!r}; splits: {', '.join(splits)}", path=where)
    return ds[split], split


def _check_single(ds: Any, split: str | None, where: str) -> None:
    """Refuse a split named for a saved single Dataset (it has none to pick from), unless it is
    the split the dataset was saved from (``Dataset.split``)."""
    if split is None or hasattr(ds, "keys"):
        return
    own = str(ds.split) if getattr(ds, "split", None) is not None else None
    if split == own:
        return
    saved = f"it was saved from split {own!r}" if own else "it records no split"
    raise DataError(
        f"split {split!r} was asked for, but this saved dataset is a single Dataset with no "
        f"splits ({saved}); read it as {where} without a split",
        path=where,
    )


def iter_dataset(ds: Any, where: str, name: str) -> Iterator[tuple[Location, dict[str, Any]]]:
    """Rows of a ``datasets.Dataset`` as plain dicts, with 0-based row locations."""
    row = 0
    for batch in ds.with_format(None).iter(batch_size=2048):
        cols = list(batch)
        n = len(batch[cols[0]]) if cols else 0
        for i in range(n):
            yield Location(where, name, row=row, kind="dataset"), {c: batch[c][i] for c in cols}
            row += 1


def iter_saved(path: Path, split: str | None) -> Iterator[tuple[Location, dict[str, Any]]]:
    """Rows of a dataset directory written by ``save_to_disk``."""
    datasets = _datasets()
    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as e:
        raise DataError(f"cannot load saved dataset: {e}", path=str(path)) from e
    _check_single(ds, split, str(path))
    ds, chosen_split = _pick_split(ds, split, str(path))
    name = path.name + (f"/{chosen_split}" if chosen_split else "")
    return iter_dataset(ds, str(path), name)


def _offline() -> bool:
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return True
    hub = sys.modules.get("huggingface_hub.constants")
    return bool(getattr(hub, "HF_HUB_OFFLINE", False))


def hub_reachable(timeout: float = 5.0) -> bool:
    """Whether the Hugging Face hub answers within ``timeout`` seconds."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    try:
        urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=timeout)
    except urllib.error.HTTPError:
        return True  # it answered
    except (OSError, ValueError):
        return False
    return True


def parse_hf_name(spec: str, split: str | None) -> tuple[str, str | None]:
    """``"hf:org/name[:split]"`` to ``(name, split)``; a ``split=`` argument must agree."""
    rest = spec[len("hf:") :]
    name, _, in_name = rest.partition(":")
    if not name.strip():
        raise DataError(f"expected hf:ORG/NAME[:SPLIT], got {spec!r}")
    if in_name and split and in_name != split:
        raise DataError(f"{spec!r} names split {in_name!r} but split={split!r} was passed")
    return name, (in_name or split)


def iter_hub(spec: str, split: str | None) -> Iterator[tuple[Location, dict[str, Any]]]:
    """Rows of ``hf:org/name[:split]`` loaded with ``datasets.load_dataset``.

    Offline (``HF_HUB_OFFLINE=1``) only the local cache is used; online, an unreachable hub is an
    immediate error instead of a long retry loop.
    """
    name, split = parse_hf_name(spec, split)
    offline = _offline()
    if not offline and not hub_reachable():
        raise DataError(
            "the Hugging Face hub is not reachable; set HF_HUB_OFFLINE=1 to use the local cache, "
            "or save the dataset with save_to_disk and load that directory",
            path=spec,
        )
    datasets = _datasets()
    try:
        ds = datasets.load_dataset(name, split=split)
    except Exception as e:
        mode = " (offline: HF_HUB_OFFLINE=1, and not in the local cache?)" if offline else ""
        raise DataError(f"cannot load dataset {name!r}{mode}: {e}", path=spec) from e
    ds, chosen_split = _pick_split(ds, split, spec)
    label = name + (f"/{chosen_split}" if chosen_split else "")
    return iter_dataset(ds, spec, label)
