"""LoRA / PEFT adapter folders: what TRL + peft save after training a reward model or a DPO
policy (docs/families.md, "LoRA / PEFT adapter folders").

Such a folder holds ``adapter_config.json`` and ``adapter_model.safetensors`` (maybe tokenizer
files, maybe ``modules_to_save`` weights such as a classifier's ``score`` head) and no model
weights; ``base_model_name_or_path`` names the base. rewardkit loads the base, applies the
adapter and merges it (``merge_and_unload``): the model then scores exactly as the merged model's
plain forward. The base must be a local folder (or an embedded model): a Hub id is refused in one
line asking for ``base=/path/to/base``, never downloaded.

Everything wrong with an adapter is a one-line :class:`~rewardkit.errors.SpecError` naming the
folder: no base or one that cannot be found, a base it does not fit (another architecture or
hidden size), adapter weights missing, cut short or incomplete, an adapter of another task than
the reward needs (a policy's ``CAUSAL_LM`` LoRA has no score head), peft not installed
(:class:`~rewardkit.errors.MissingDependencyError`).

Heavy imports (torch, safetensors, peft) happen only where weights are read or a model is built.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rewardkit.errors import MissingDependencyError, SpecError

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
PEFT_INSTALL = "pip install 'rewardkit[train]'"
#: Model weight files whose presence makes a folder a whole model, even beside an adapter.
_MODEL_WEIGHTS = re.compile(r"^(model.*\.safetensors|pytorch_model.*\.bin|.*\.index\.json)$")
#: Adapters that add virtual tokens: nothing to merge into the weights.
PROMPT_LEARNING = frozenset(
    {"PROMPT_TUNING", "MULTITASK_PROMPT_TUNING", "P_TUNING", "PREFIX_TUNING", "ADAPTION_PROMPT"}
)
#: The task each kind of reward loads an adapter for.
SEQ_CLS, CAUSAL_LM = "SEQ_CLS", "CAUSAL_LM"
#: What an adapter of each task is, and how to score it instead.
_TASKS = {
    CAUSAL_LM: (
        "a policy's LoRA with no score head",
        "score it with dpo:ADAPTER (its log-probs against its base), or pass the SEQ_CLS "
        "adapter of a reward model with its trained score head",
    ),
    SEQ_CLS: ("a reward model's LoRA with a score head", "score it with classifier:ADAPTER"),
}
_HINT = "pass the base folder with base=/path/to/base (e.g. classifier:ADAPTER?base=/path/to/base)"


def is_adapter_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder holding a PEFT adapter (``adapter_config.json``) and no
    model weights of its own."""
    folder = Path(path).expanduser()
    if not (folder / ADAPTER_CONFIG).is_file():
        return False
    return not any(_MODEL_WEIGHTS.match(p.name) for p in folder.iterdir() if p.is_file())


@dataclass(frozen=True)
class Adapter:
    """A read adapter folder: its config, weights' shapes and the base it goes on."""

    folder: Path
    config: dict[str, Any]
    weights_file: Path
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    #: The base as resolve_model takes it: an absolute local folder or an embedded alias.
    base: str = ""
    #: Where the base's files are (filled in by :func:`rewardkit.models.loading.resolve_model`).
    base_source: str = ""

    @property
    def task_type(self) -> str | None:
        found = self.config.get("task_type")
        return str(found) if found else None

    @property
    def peft_type(self) -> str:
        return str(self.config.get("peft_type") or "LORA")

    def head_weights(self) -> list[str]:
        """Saved tensors that are whole modules (``modules_to_save``: a classifier's head), not
        adapter factors."""
        saved = [str(m) for m in self.config.get("modules_to_save") or ()]
        saved += ["score", "classifier"] if self.task_type == SEQ_CLS else []  # peft adds them
        out = []
        for name in self.shapes:
            parts = name.split(".")
            if any(p.startswith(("lora_", "hada_", "lokr_", "ia3_")) for p in parts):
                continue
            if any(m in parts for m in saved):
                out.append(name)
        return sorted(out)

    def uncovered(self, names: list[str]) -> list[str]:
        """Those of a model's weight ``names`` the adapter file does not hold."""
        return [
            n for n in names if n not in self.shapes and f"base_model.model.{n}" not in self.shapes
        ]

    def tokenizer_source(self) -> str:
        """The adapter folder when it carries tokenizer files, else the base's folder."""
        return str(self.folder) if _has_tokenizer(self.folder) else self.base_source

    def describe(self) -> dict[str, Any]:
        """What the adapter is, for a reward's notes and ``check-model``."""
        out: dict[str, Any] = {"peft_type": self.peft_type, "task_type": self.task_type}
        for key in ("r", "lora_alpha", "use_dora", "use_rslora"):
            if self.config.get(key) not in (None, False):
                out[key] = self.config[key]
        targets = self.config.get("target_modules")
        if targets:
            out["target_modules"] = sorted(targets) if isinstance(targets, list) else targets
        if self.head_weights():
            out["saved_modules"] = [
                n.removeprefix("base_model.model.") for n in self.head_weights()
            ]
        out["base"] = self.base_source or self.base
        return out

    def merge(self, model: Any) -> Any:
        """:func:`merge_adapter` of this adapter into ``model``."""
        return merge_adapter(model, self)


def read_adapter(folder: str | Path, base: str | None = None) -> Adapter:
    """The :class:`Adapter` in ``folder``, its base from ``base`` (the ``base=`` option) or else
    the config's ``base_model_name_or_path``; refused in one line when its config or weights
    cannot be read or its base is not a local folder or an embedded model."""
    path = Path(folder).expanduser().resolve()
    config = _read_config(path)
    peft_type = str(config.get("peft_type") or "")
    if peft_type in PROMPT_LEARNING:
        raise SpecError(
            f"{path}: a {peft_type} adapter adds virtual tokens and cannot be merged into the "
            "base's weights; rewardkit scores LoRA-style adapters (LORA, DoRA, IA3, LoHa, LoKr…)"
        )
    weights = next((path / n for n in ADAPTER_WEIGHTS if (path / n).is_file()), None)
    if weights is None:
        raise SpecError(
            f"{path}: no adapter weights ({' / '.join(ADAPTER_WEIGHTS)}) beside "
            f"{ADAPTER_CONFIG}; the adapter was not saved completely"
        )
    shapes = adapter_shapes(weights)
    adapter = Adapter(path, config, weights, shapes, _base_name(path, config, base))
    _check_rank(adapter)
    return adapter


def _not_json(token: str) -> Any:
    raise ValueError(f"{token} is not JSON")  # NaN alpha: every merged weight, every score NaN


def _read_config(path: Path) -> dict[str, Any]:
    try:
        text = (path / ADAPTER_CONFIG).read_text(encoding="utf-8")
        data = json.loads(text, parse_constant=_not_json)
    except (OSError, ValueError, RecursionError) as exc:
        why = "nested too deep" if isinstance(exc, RecursionError) else exc
        raise SpecError(
            f"{path / ADAPTER_CONFIG}: cannot read the adapter config ({why}); the file is cut "
            "short or not JSON"
        ) from None
    if not isinstance(data, dict):
        raise SpecError(f"{path / ADAPTER_CONFIG}: the adapter config is not a JSON object")
    _check_fields(path / ADAPTER_CONFIG, data)
    return data


#: Config fields that are a name or absent, and those that are a list of names (or one name).
_TEXT_FIELDS = ("peft_type", "task_type")
_NAME_LIST_FIELDS = ("target_modules", "modules_to_save")


def _check_fields(where: Path, config: dict[str, Any]) -> None:
    """The config fields rewardkit reads have their types (peft would fail on them with a bare
    TypeError, or, for a NaN/negative scale, merge into NaN weights)."""

    def bad(key: str, want: str) -> SpecError:
        value = repr(config[key])
        shown = value if len(value) <= 60 else value[:57] + "..."
        return SpecError(f"{where}: {key} must be {want}, got {shown}")

    for key in _TEXT_FIELDS:
        if config.get(key) is not None and not isinstance(config[key], str):
            raise bad(key, "a name")
    for key in _NAME_LIST_FIELDS:
        value = config.get(key)
        names = [value] if isinstance(value, str) else value
        if value is not None and not (
            isinstance(names, list) and all(isinstance(n, str) for n in names)
        ):
            raise bad(key, "a module name or a list of them")
    r = config.get("r")
    if r is not None and (isinstance(r, bool) or not isinstance(r, int) or r < 1):
        raise bad("r", "a whole number ≥ 1")
    alpha = config.get("lora_alpha")
    if alpha is not None and (isinstance(alpha, bool) or not isinstance(alpha, int | float)):
        raise bad("lora_alpha", "a number")


def _check_rank(adapter: Adapter) -> None:
    """A LoRA config's ``r`` is the rank its weights were saved with (a wrong one would have
    peft allocate factors of that rank: ``r=10**12`` asks for terabytes)."""
    r, pattern = adapter.config.get("r"), adapter.config.get("rank_pattern")
    if r is None or pattern or adapter.peft_type != "LORA":
        return
    ranks = {s[0] for n, s in adapter.shapes.items() if ".lora_A." in f".{n}." and len(s) == 2}
    if ranks and r not in ranks:
        raise SpecError(
            f"{adapter.folder / ADAPTER_CONFIG}: r is {r} but the adapter weights have rank "
            f"{'/'.join(map(str, sorted(ranks)))}; the config does not belong to these weights"
        )


def adapter_shapes(weights: Path) -> dict[str, tuple[int, ...]]:
    """Name → shape of every tensor of an adapter weights file; one line when it cannot be read
    (cut short, empty, not a weight file) or holds nothing."""
    from rewardkit.models.checkpoint import file_shapes

    shapes = file_shapes(weights)
    if not shapes:
        raise SpecError(f"{weights}: the adapter weights file holds no tensors")
    return shapes


def _base_name(folder: Path, config: dict[str, Any], given: str | None) -> str:
    """The base as ``resolve_model`` takes it: an absolute local folder or an embedded alias."""
    from rewardkit.models.embedded import embedded_key

    if given is not None and not isinstance(given, str):
        raise SpecError(f"{folder}: base= must be the base model's folder, got {given!r}")
    named = given if given is not None else config.get("base_model_name_or_path")
    where = "base=" if given is not None else f"{ADAPTER_CONFIG} base_model_name_or_path"
    if not isinstance(named, str) or not named.strip():
        raise SpecError(f"{folder}: the adapter names no base model ({where}); {_HINT}")
    named = named.strip()
    local = Path(named).expanduser()
    candidates = [local] if local.is_absolute() else [Path.cwd() / local, folder / local]
    for found in candidates:
        if found.is_dir():
            return str(found.resolve())
    if embedded_key(named) is not None:
        return named
    looks_local = named.startswith(("/", ".", "~")) or named.count("/") > 1
    what = (
        "is not a folder here"
        if looks_local
        else "is a Hub id, and rewardkit does not download bases"
    )
    raise SpecError(f"{folder}: the adapter's base {named!r} ({where}) {what}; {_HINT}")


def resolve_adapter(folder: Path, base: str | None = None) -> Any:
    """The :class:`~rewardkit.models.loading.ResolvedModel` of an adapter folder: its source is
    the folder, its identity (the score cache's key) the adapter's weights and config hashes
    and its base's identity, so a retrained adapter or another base never serves cached
    scores."""
    from rewardkit.models.loading import ResolvedModel, _weights_id, resolve_model

    path = folder.expanduser()
    if not is_adapter_folder(path):
        what = "a whole model" if (path / "config.json").is_file() else "not an adapter folder"
        what = what if path.is_dir() else "not a local folder"
        raise SpecError(
            f"{path}: base= names the base of a LoRA/PEFT adapter folder (one with "
            f"{ADAPTER_CONFIG} and no model weights); this is {what}"
        )
    adapter = read_adapter(path, base)
    if Path(adapter.base).is_absolute() and is_adapter_folder(adapter.base):
        # checked before the base resolves: an adapter naming itself (or a cycle) recursed
        if Path(adapter.base) == adapter.folder:
            raise SpecError(f"{adapter.folder}: the adapter names itself as its base; {_HINT}")
        raise SpecError(
            f"{adapter.folder}: its base {adapter.base} is itself an adapter folder; merge that "
            "adapter into its base first (peft's merge_and_unload) and pass the merged folder"
        )
    found = resolve_model(adapter.base)
    if not (Path(found.source) / "config.json").is_file():
        raise SpecError(
            f"{adapter.folder}: the adapter's base {found.source} has no config.json; {_HINT}"
        )
    identity = {
        "model": str(adapter.folder),
        "adapter_files": _weights_id(adapter.folder),
        "base": found.identity,
    }
    return ResolvedModel(str(adapter.folder), identity, replace(adapter, base_source=found.source))


def tokenizer_folder(source: str) -> str:
    """Where a model's tokenizer is read: ``source``, or for an adapter folder without tokenizer
    files the base its config names."""
    if not is_adapter_folder(source) or _has_tokenizer(Path(source)):
        return source
    return resolve_adapter(Path(source)).adapter.base_source


def _has_tokenizer(folder: Path) -> bool:
    from rewardkit.models.integrity import TOKENIZER_FILES

    return any((folder / n).is_file() for n in TOKENIZER_FILES) or any(
        p.suffix in (".model", ".tiktoken") for p in folder.iterdir() if p.is_file()
    )


def load_merged_causal_lm(source: str, dtype: str, adapter: Adapter | None = None) -> Any:
    """The causal LM of an adapter folder (``adapter``, else the one at ``source`` over the
    base its config names): the base, freshly loaded, with the adapter merged, in eval mode."""
    import transformers

    from rewardkit.models.integrity import load_pretrained
    from rewardkit.models.loading import finish_dtype, torch_dtype

    adapter = adapter or resolve_adapter(Path(source)).adapter
    require_task(adapter, CAUSAL_LM)
    import_peft(adapter)
    auto = transformers.AutoModelForCausalLM
    model, _ = load_pretrained(auto, adapter.base_source, dtype=torch_dtype(dtype))
    return finish_dtype(merge_adapter(model, adapter), dtype)


def check_classifier(adapter: Adapter, family: str, base_is_classifier: bool) -> None:
    """Before a classifier adapter's base loads: the base's family takes a sequence-classifier
    adapter, the adapter is one (with its head), and peft is installed."""
    if family != "sequence-classifier":
        raise SpecError(
            f"{adapter.folder}: adapter folders load as sequence classifiers; its base "
            f"{adapter.base_source} is of family {family}"
        )
    require_task(adapter, SEQ_CLS, base_is_classifier)
    import_peft(adapter)


def require_task(adapter: Adapter, wanted: str, base_is_classifier: bool = False) -> None:
    """Refuse an adapter trained for another task than ``wanted`` (``SEQ_CLS`` for a
    classifier, ``CAUSAL_LM`` for log-prob rewards). A classifier adapter must also bring its
    score head (``modules_to_save``) unless its base is a saved classifier with its own."""
    task = adapter.task_type
    if task not in (None, wanted):
        kind = {SEQ_CLS: "a classifier", CAUSAL_LM: "a causal LM (log-prob rewards)"}[wanted]
        what, use = _TASKS.get(str(task), (f"task {task}", ""))
        raise SpecError(
            f"{adapter.folder}: a {task} adapter ({what}) cannot be loaded as {kind}"
            + (f"; {use}" if use else "")
        )
    if wanted == SEQ_CLS and head_outputs(adapter) is None and not base_is_classifier:
        raise SpecError(
            f"{adapter.folder}: the adapter holds no score head (modules_to_save, e.g. "
            f"'score.weight') and its base {adapter.base_source or adapter.base} has none; the "
            "head would be random and every score noise"
        )


def head_outputs(adapter: Adapter) -> int | None:
    """The output count of the classifier head the adapter saved (its weight's first dim)."""
    heads = [n for n in adapter.head_weights() if len(adapter.shapes[n]) == 2]
    for last in ("out_proj.weight", "score.weight", "classifier.weight"):
        for name in heads:
            if name.endswith(f".{last}") or name == last:
                return int(adapter.shapes[name][0])
    return None


def import_peft(adapter: Adapter) -> Any:
    """The peft module, or a :class:`MissingDependencyError` naming the extra."""
    try:
        import peft
    except ImportError:
        raise MissingDependencyError(
            f"{adapter.folder}: a LoRA/PEFT adapter folder needs peft: {PEFT_INSTALL}"
        ) from None
    return peft


def merge_adapter(model: Any, adapter: Adapter) -> Any:
    """``model`` (the base, freshly loaded: it is changed in place) with ``adapter`` applied and
    merged into its weights; the plain transformers model comes back. Refused in one line when
    the adapter does not fit the base (shapes, target modules) or its file lacks adapter
    tensors the model needs (they would stay at their initial values: the adapter half
    applied)."""
    peft = import_peft(adapter)
    from peft.auto import MODEL_TYPE_TO_PEFT_MODEL_MAPPING

    base = adapter.base_source or adapter.base
    fit = f"{adapter.folder}: the adapter does not fit its base {base}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            config = peft.PeftConfig.from_pretrained(str(adapter.folder))
        except (TypeError, ValueError, KeyError) as exc:
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise SpecError(
                f"{adapter.folder / ADAPTER_CONFIG}: peft refuses it ({first})"
            ) from None
        config.inference_mode = True
        cls = MODEL_TYPE_TO_PEFT_MODEL_MAPPING.get(config.task_type, peft.PeftModel)
        try:
            wrapped = cls(model, config, "default")
            result = wrapped.load_adapter(str(adapter.folder), "default", is_trainable=False)
        except RuntimeError as exc:
            raise SpecError(f"{fit} ({_mismatch(exc)}; another hidden size?)") from None
        except (ValueError, KeyError) as exc:  # no target module found, a module missing
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise SpecError(
                f"{fit} ({type(model).__name__}: {first}); another architecture?"
            ) from None
    missing = sorted(
        k.replace(".default.", ".").removeprefix("base_model.model.")
        for k in result.missing_keys
        if _adapter_param(k)
    )
    unused = sorted(result.unexpected_keys)
    if missing or unused:
        from rewardkit.models.integrity import shown

        what = f"lacks {len(missing)} adapter tensor(s) the model needs ({shown(missing)})"
        if not missing:
            what = f"holds {len(unused)} tensor(s) the base has no place for ({shown(unused)})"
        raise SpecError(
            f"{adapter.weights_file}: the adapter weights file {what}; it does not match "
            f"{ADAPTER_CONFIG} or the base {base}"
        )
    try:
        return wrapped.merge_and_unload()
    except (AttributeError, NotImplementedError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise SpecError(
            f"{adapter.folder}: a {adapter.peft_type} adapter cannot be merged into its base "
            f"({first})"
        ) from None


def _adapter_param(name: str) -> bool:
    """Whether a missing key is one of the adapter's own tensors (not a base weight)."""
    parts = name.split(".")
    return any(p.startswith(("lora_", "hada_", "lokr_", "ia3_")) for p in parts) or (
        "modules_to_save" in parts
    )


def _mismatch(exc: RuntimeError) -> str:
    """The first "size mismatch" of a state-dict load, in short."""
    found = re.search(
        r"size mismatch for ([^:]+): copying a param with shape torch\.Size\((\[[^\]]*\])\) "
        r"from checkpoint, the shape in current model is torch\.Size\((\[[^\]]*\])\)",
        str(exc),
    )
    if found is None:
        return (str(exc).strip().splitlines() or [""])[0][:200]
    name = found.group(1).replace(".default.", ".").removeprefix("base_model.model.")
    return f"{name} is {found.group(2)} in the adapter, {found.group(3)} in the base"
