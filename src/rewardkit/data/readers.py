"""Low-level readers: one data file to ``(Location, record)`` pairs.

JSONL is decoded line by line from bytes, so a bad byte or bad JSON names its line. Record-level
problems are *yielded* as :class:`DataError` values (so callers may skip them); file-level
problems are raised.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from rewardkit.data.filebytes import READ_ERRORS, open_bytes
from rewardkit.data.jsontext import (
    MAX_DEPTH,
    DuplicateKeyError,
    check_tree,
    marking_decoder,
    nesting_depth,
    parse_json,
    repeated_key,
    scan_flags,
)
from rewardkit.data.location import Location, describe
from rewardkit.data.pandasjson import frame_records, grouped_records
from rewardkit.errors import DataError, MissingDependencyError

Item = tuple[Location, "dict[str, Any] | DataError"]

#: Supported data-file suffixes, longest first, with the reader kind for each.
SUFFIXES: dict[str, str] = {
    ".jsonl.gz": "jsonl",
    ".ndjson.gz": "jsonl",
    ".json.gz": "json",
    ".csv.gz": "csv",
    ".tsv.gz": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
}


def file_kind(path: Path) -> str | None:
    """The reader kind for ``path`` by its suffix, or None when unsupported."""
    name = path.name.lower()
    return next((kind for sfx, kind in SUFFIXES.items() if name.endswith(sfx)), None)


#: Most values a YAML file may expand to (aliases can make a small file expand exponentially).
MAX_YAML_NODES = 200_000


def _expanded_size(obj: Any, budget: int) -> int:
    """Number of values in ``obj`` counting every alias expansion, stopping past ``budget``."""
    n, stack = 0, [obj]
    while stack and n <= budget:
        value = stack.pop()
        n += 1
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return n


def yaml_problem(e: Exception) -> str:
    """A YAML error in one line: ``line L, column C: what`` (PyYAML's own text spans several
    lines, with a caret under the quoted source)."""
    mark, problem = getattr(e, "problem_mark", None), getattr(e, "problem", None)
    if mark is None or not problem:
        return " ".join(str(e).split())
    context = getattr(e, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}"
    return f"{where}: {problem}" + (f" ({context})" if context else "")


#: YAML 1.2 core-schema scalars (what a reward spec file is read with): only ``true``/``false``
#: are booleans and only decimal, ``0o`` and ``0x`` digits integers, so ``no``, ``on``, ``017``
#: and ``1:30`` are not read as YAML 1.1's False, True, 15 and 90.
_CORE_SCALARS = (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
)


@functools.cache
def _yaml_loader(core: bool) -> Any:
    """``yaml.SafeLoader`` that refuses a key repeated in one mapping (JSON's rule: never a
    silent last-value-wins), reading YAML 1.2 core-schema scalars when ``core``."""
    import re

    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in getattr(node, "value", []):
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # '<<: *base' keys may be overridden: that is what merging is for
                key = self.construct_object(key_node, deep=True)
                try:
                    repeated = key in seen
                except TypeError:  # an unhashable key: the base class names it
                    break
                if repeated:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"duplicate key {key!r} (a mapping gives it twice)",
                        key_node.start_mark,
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    if not core:
        return UniqueKeyLoader

    class CoreLoader(UniqueKeyLoader):
        pass

    tags = {f"tag:yaml.org,2002:{name}" for name, _, _ in _CORE_SCALARS}
    tags.add("tag:yaml.org,2002:timestamp")
    CoreLoader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in found if tag not in tags]
        for first, found in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    for name, pattern, first in _CORE_SCALARS:
        CoreLoader.add_implicit_resolver(f"tag:yaml.org,2002:{name}", re.compile(pattern), first)

    def core_int(loader: Any, node: Any) -> int:
        text = loader.construct_scalar(node)
        if text.startswith(("0o", "0x")):
            return int(text[2:], 8 if text[1] == "o" else 16)
        return int(text)  # decimal, leading zeros and all: 017 is 17

    CoreLoader.add_constructor("tag:yaml.org,2002:int", core_int)
    return CoreLoader


def _yaml_deeper_than(text: str, limit: int) -> bool:
    """Whether mappings and sequences in YAML text nest deeper than ``limit``, from its event
    stream (iterative, aliases not expanded, stopping there): see
    :func:`rewardkit.data.jsontext.nesting_depth`."""
    import yaml

    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            depth += 1
            if depth > limit:
                return True
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            depth -= 1
    return False


def parse_yaml(text: str, *, core: bool = False) -> Any:
    """``yaml.safe_load`` that fails with a :class:`ValueError` saying why for hostile input:
    syntax errors, a key repeated in one mapping, nesting deeper than :data:`MAX_DEPTH`, alias
    bombs (more than :data:`MAX_YAML_NODES` values once expanded), integers too long to
    convert, lone surrogates. ``core`` reads scalars as YAML 1.2's core schema does (reward
    spec files: ``no`` and ``1:30`` are text, ``017`` is 17; :data:`_CORE_SCALARS`)."""
    import yaml

    try:
        obj = yaml.load(text, Loader=_yaml_loader(core))  # a SafeLoader subclass
    except RecursionError:
        if not _yaml_deeper_than(text, MAX_DEPTH):
            raise  # the caller's stack was deep, not this document
        raise ValueError(f"invalid YAML: nested more than {MAX_DEPTH} levels deep") from None
    except yaml.YAMLError as e:
        raise ValueError(f"invalid YAML: {yaml_problem(e)}") from None
    except ValueError as e:  # an integer of thousands of digits
        raise ValueError(f"invalid YAML: {e}") from None
    if _expanded_size(obj, MAX_YAML_NODES) > MAX_YAML_NODES:
        raise ValueError(f"invalid YAML: more than {MAX_YAML_NODES:,} values once aliases expand")
    problem = check_tree(obj)
    if problem is not None:
        raise ValueError(f"invalid YAML: {problem}")
    return obj


def read_config_file(path: str | Path, what: str = "file", *, core_yaml: bool = False) -> Any:
    """The content of a JSON (``.json``) or YAML file a user points at (a reward spec, a train
    config, a fitted temperature), or a :class:`DataError` naming the file and saying why it
    cannot be read: missing, unreadable, not a regular file (a FIFO or ``/dev/zero`` would block
    or fill memory), not UTF-8, invalid or hostile JSON/YAML."""
    p = Path(path)
    if p.exists() and not p.is_file() and not p.is_dir():  # a directory: read_bytes says so
        from rewardkit.data.sources import file_type

        raise DataError(f"the {what} is not a regular file ({file_type(p)})", path=str(p))
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read the {what}: {e.strerror or e}", path=str(p)) from None
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        bad = raw[e.start : e.start + 4]
        raise DataError(
            f"the {what} is not UTF-8 text (invalid bytes {bad!r} at byte {e.start})", path=str(p)
        ) from None
    try:
        return parse_json(text) if p.suffix.lower() == ".json" else parse_yaml(text, core=core_yaml)
    except ValueError as e:
        raise DataError(f"the {what}: {e}", path=str(p)) from None


def _read_error(path: Path, exc: Exception) -> DataError:
    return DataError(f"cannot read file: {exc}", path=str(path))


def _decode(raw: bytes, loc: Location) -> str | DataError:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        bad = raw[e.start : e.start + 4]
        return loc.error(f"expected UTF-8 text, got invalid bytes {bad!r} at byte {e.start}")
    return text.removeprefix("\ufeff") if loc.line == 1 else text


def _line_problem(message: str, text: str) -> str:
    """A JSON Lines line's parse error as a located reason, naming the invisible causes: a UTF-8
    byte-order mark starting a later line (files joined with ``cat``), records on one line
    between lone CR line ends (old Mac files; only LF and CRLF end a line)."""
    message = message.replace(" (line 1, column", " (column")
    if text.startswith("\ufeff"):
        return message + (
            " (the line starts with a UTF-8 byte-order mark, U+FEFF, as where files were "
            "joined with cat; remove it)"
        )
    if "Extra data" in message and "\r" in text.rstrip():
        return message + (
            " (the line holds lone CR (\\r) line ends, which do not end a line here; convert "
            "them to LF)"
        )
    return message


def iter_jsonl(path: Path, name: str) -> Iterator[Item]:
    """Records of a JSON Lines file; blank lines are skipped."""
    spath = str(path)
    try:
        with open_bytes(path) as fh:
            for lineno, raw in enumerate(fh, 1):
                if not raw.strip():
                    continue
                loc = Location(spath, name, line=lineno, kind="jsonl")
                text = _decode(raw, loc)
                if isinstance(text, DataError):
                    yield loc, text
                    continue
                try:
                    rec = parse_json(text.rstrip())
                except ValueError as e:
                    yield loc, loc.error(_line_problem(str(e), text))
                    continue
                if not isinstance(rec, dict):
                    yield loc, loc.error(f"expected a JSON object, got {describe(rec)}")
                    continue
                yield loc, rec
    except READ_ERRORS as e:
        raise _read_error(path, e) from e


def iter_json(path: Path, name: str) -> Iterator[Item]:
    """Records of a JSON file: an array of objects (0-based rows), one object, JSON Lines, or
    a pandas ``to_json`` table layout (:func:`~rewardkit.data.pandasjson.frame_records`)."""
    try:
        with open_bytes(path) as fh:
            data = fh.read()
    except READ_ERRORS as e:
        raise _read_error(path, e) from e
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(
            f"expected UTF-8 text, got invalid bytes {data[e.start : e.start + 4]!r}",
            path=str(path),
            line=line,
        ) from None
    if not text.strip():
        return
    repeats: list[str] = []
    try:
        obj = marking_decoder(repeats).decode(text)
    except json.JSONDecodeError as e:
        if e.msg == "Extra data" and text.lstrip().startswith("{"):
            yield from iter_jsonl(path, name)  # JSON Lines saved as .json (as datasets does)
            return
        raise DataError(
            f"invalid JSON: {e.msg} (column {e.colno})", path=str(path), line=e.lineno
        ) from None
    except RecursionError:
        if nesting_depth(text) <= MAX_DEPTH:
            raise  # the caller's stack was deep, not this document
        raise DataError(
            f"invalid JSON: nested more than {MAX_DEPTH} levels deep", path=str(path)
        ) from None
    except ValueError as e:  # an integer longer than Python converts
        raise DataError(f"invalid JSON: number too long to read ({e})", path=str(path)) from None
    flags = scan_flags(text)
    records = None if repeats else frame_records(obj)  # pandas DataFrame.to_json layouts
    records = records if records is not None or repeats else grouped_records(obj)
    records = records if records is not None else [obj] if isinstance(obj, dict) else obj
    if not isinstance(records, list):
        raise DataError(f"expected a JSON array of objects, got {describe(obj)}", path=str(path))
    for i, rec in enumerate(records):
        loc = Location(str(path), name, row=i, kind="json")
        problem = check_tree(rec, *flags)
        key = repeated_key(rec) if repeats else None
        if problem is not None:
            yield loc, loc.error(f"invalid JSON: {problem}")
        elif key is not None:
            yield loc, loc.error(str(DuplicateKeyError(key)))
        elif isinstance(rec, dict):
            yield loc, rec
        else:
            yield loc, loc.error(f"expected a JSON object, got {describe(rec)}")


def _csv_lines(fh: IO[bytes], path: Path, name: str) -> Iterator[str]:
    for lineno, raw in enumerate(fh, 1):
        text = _decode(raw, Location(str(path), name, line=lineno, kind="csv"))
        if isinstance(text, DataError):
            raise text
        yield text


def iter_tsv(path: Path, name: str) -> Iterator[Item]:
    """Records of a tab-separated file with a header row (as :func:`iter_csv`)."""
    return iter_csv(path, name, delimiter="\t")


def _blank(cells: list[str]) -> bool:
    return not cells or (len(cells) == 1 and not cells[0].strip())


def _csv_problem(e: Exception) -> str:
    """A csv.Error as the reason of a located error, with what to fix."""
    text = str(e).replace("'\t'", "a tab")
    if "new-line character seen in unquoted field" in text:
        return (
            "malformed CSV: a CR (\\r) inside a line, outside quotes (lone CR line ends, as old "
            "Mac files have, or a CR in an unquoted cell): convert line ends to LF or CRLF, or "
            "quote the cell"
        )
    if "expected after" in text:
        text += ' (a cell that starts with " must be quoted whole, inner quotes doubled)'
    elif "end of data" in text:
        text += " (a quoted cell is never closed)"
    return f"malformed CSV: {text}"


def iter_csv(path: Path, name: str, delimiter: str = ",") -> Iterator[Item]:
    """Records of a CSV file with a header row (blank lines before it are skipped); ``line`` is
    the record's first physical line. Quoting is strict: a stray quote is a located error, never
    text silently changed."""
    import csv

    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    spath = str(path)
    try:
        with open_bytes(path) as fh:
            reader = csv.reader(_csv_lines(fh, path, name), delimiter=delimiter, strict=True)
            start = 1
            try:
                header: list[str] | None = []
                while header is not None and _blank(header):
                    start = reader.line_num + 1
                    header = next(reader, None)
                if header is None:
                    return
                if header[0].lstrip().startswith(("{", "[")):
                    raise DataError(
                        "the header row starts with JSON "
                        f"({header[0].lstrip()[:1]!r}): the file looks like JSON Lines or JSON, "
                        "not CSV; name it .jsonl or .json",
                        path=spath,
                        line=start,
                    )
                dupes = sorted({h for h in header if header.count(h) > 1})
                if dupes:
                    raise DataError(f"duplicate column name(s) {dupes}", path=spath, line=start)
                while True:
                    start = reader.line_num + 1
                    cells = next(reader, None)
                    if cells is None:
                        return
                    if _blank(cells):
                        continue
                    loc = Location(spath, name, line=start, kind="csv")
                    if len(cells) != len(header):
                        yield (
                            loc,
                            loc.error(
                                f"expected {len(header)} cells (columns: {', '.join(header)}), "
                                f"got {len(cells)}"
                            ),
                        )
                        continue
                    yield loc, dict(zip(header, cells, strict=True))
            except csv.Error as e:
                raise DataError(_csv_problem(e), path=spath, line=start) from None
    except READ_ERRORS as e:
        raise _read_error(path, e) from e


def iter_parquet(path: Path, name: str) -> Iterator[Item]:
    """Records of a Parquet file (0-based rows)."""
    try:
        import pyarrow.parquet as pq
    except ImportError as e:
        raise MissingDependencyError(
            "reading Parquet needs pyarrow: pip install 'rewardkit[data]'"
        ) from e
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:
        raise DataError(f"not a readable Parquet file: {e}", path=str(path)) from e
    row = 0
    for records in _parquet_batches(pf, path):
        for rec in records:
            yield Location(str(path), name, row=row, kind="parquet"), rec
            row += 1


def _parquet_batches(pf: Any, path: Path) -> Iterator[list[dict[str, Any]]]:
    """The file's rows, a batch at a time; damaged pages are a :class:`DataError` naming the
    file, the row group and the first row not read (pyarrow's own error names no file)."""
    row = 0
    for group in range(pf.num_row_groups):
        batches = pf.iter_batches(batch_size=4096, row_groups=[group])
        while True:
            try:
                batch = next(batches, None)
                records = None if batch is None else batch.to_pylist()
            except Exception as e:  # OSError / ArrowException from a damaged page
                raise DataError(
                    f"cannot read Parquet row group {group} (rows from {row} on; damaged "
                    f"pages?): {e}",
                    path=str(path),
                    row=row,
                ) from None
            if records is None:
                break
            yield records
            row += len(records)


_READERS = dict(jsonl=iter_jsonl, json=iter_json, csv=iter_csv, tsv=iter_tsv, parquet=iter_parquet)


def iter_file(path: Path, name: str) -> Iterator[Item]:
    """Records of one data file, by its suffix."""
    kind = file_kind(path)
    if kind is None:
        raise DataError(
            f"unsupported file type; expected one of {', '.join(SUFFIXES)}", path=str(path)
        )
    return _READERS[kind](path, name)
