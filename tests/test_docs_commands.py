"""What the docs tell a user to type, and what they say it prints, is what the command line takes
and prints.

- Every ``rewardkit VERB … --flag`` written in ``docs/cli/*.md`` and ``README.md`` (code blocks
  and inline code) names a verb the app has and flags that verb's parser takes (``train``: its
  options or a ``TrainConfig`` field). The check is shown to catch an invented flag and verb.
- The output lines ``docs/cli/score.md`` quotes are the lines ``rewardkit score`` prints, and the
  validation errors ``docs/data-formats.md`` lists are the errors the loader raises.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from rewardkit.cli import app, build_app

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
runner = CliRunner()

#: Fenced blocks whose lines are shell commands (not code in another language).
_SHELL = {"", "bash", "sh", "shell", "console", "text"}
_FLAG = re.compile(r"(?<![\w-])--(?:\[no-\])?[A-Za-z][\w-]*")


def doc_commands(text: str) -> list[str]:
    """Every ``rewardkit …`` command in a Markdown text: the lines of shell code blocks (joined
    with their ``\\`` and indented ``[…]`` continuation lines) and inline code spans."""
    out: list[str] = []
    blocks = re.findall(r"^```([^\n]*)\n(.*?)^```", text, flags=re.S | re.M)
    for lang, block in blocks:
        if lang.strip() not in _SHELL:
            continue
        current: str | None = None
        for line in block.splitlines():
            stripped = line.strip()
            if current is not None and (
                current.endswith("\\") or (line[:1].isspace() and stripped.startswith("["))
            ):
                current = current.rstrip("\\") + " " + stripped
                continue
            if current is not None:
                out.append(current)
            found = re.search(r"(?:^|\s)(rewardkit\s+\S.*)", stripped)
            current = found.group(1) if found and not stripped.startswith("#") else None
        if current is not None:
            out.append(current)
    prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    out += re.findall(r"`(rewardkit\s[^`]*)`", prose)
    return out


def _root():
    return typer.main.get_command(build_app())


def command_problems(command: str, root=None) -> list[str]:
    """What in ``command`` the app does not have: an unknown verb, or a flag none of the
    commands on its path (groups included, ``curate --on-error``) takes."""
    from rewardkit.train.config import field_names

    root = root or _root()
    command = re.sub(r"\s#\s.*$", "", command)  # a trailing shell comment
    tokens = command.split()[1:]
    node, chain, path = root, [root], []
    for token in tokens:
        if getattr(node, "commands", None) and token in node.commands:
            node = node.commands[token]
            chain.append(node)
            path.append(token)
    if tokens and not path and not tokens[0].startswith("-"):
        return [f"no verb {tokens[0]!r} in `{command}`"]
    flags = {o for c in chain for p in c.params for o in (*p.opts, *p.secondary_opts)}
    flags.add("--help")
    problems = []
    for raw in _FLAG.findall(command):
        names = [raw] if "[no-]" not in raw else [raw.replace("[no-]", ""), "--no-" + raw[7:]]
        for name in names:
            if name in flags or any(ch.isupper() for ch in name):  # --FIELD: a placeholder
                continue
            field = name[2:].replace("-", "_")
            if path[:1] == ["train"] and field.removeprefix("no_") in field_names():
                continue
            problems.append(f"`rewardkit {' '.join(path)}` has no {name} (`{command}`)")
    return problems


PAGES = [*sorted((DOCS / "cli").glob("*.md")), ROOT / "README.md"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_documented_flag_is_in_its_verbs_parser(page):
    commands = doc_commands(page.read_text())
    assert commands, f"{page.name}: no `rewardkit …` command found (is the parser broken?)"
    root = _root()
    problems = [p for c in commands for p in command_problems(c, root)]
    assert not problems, "\n".join(problems)


def test_the_flag_check_catches_an_invented_flag_and_verb():
    text = (DOCS / "cli" / "score.md").read_text()
    assert not [p for c in doc_commands(text) for p in command_problems(c)]
    text += (
        "\nUse `rewardkit score -r rule:length --data a.jsonl --out b.jsonl --chunk-sizes 8`.\n\n"
        "```bash\nrewardkit eval -r rule:length \\\n  --no-such-flag --n-boot 10\n"
        "rewardkit frobnicate --out x\n"
        "rewardkit report DIR [--[no-]plots]\n"
        "rewardkit train --config c.yaml --lr 1e-4 --no-packing --learning_rate 3\n```\n"
    )
    found = "\n".join(p for c in doc_commands(text) for p in command_problems(c))
    for bad in ("--chunk-sizes", "--no-such-flag", "'frobnicate'", "--plots", "--no-plots"):
        assert bad in found, (bad, found)
    assert "--learning_rate" in found  # not a TrainConfig field
    for good in ("--n-boot", "--lr", "--no-packing", "--data", "--config"):
        assert f"has no {good} " not in found, found


def test_doc_commands_joins_continuation_lines():
    text = "```\nrewardkit bon --data p.jsonl --out b.jsonl --reward R [--n 8]\n    [--seed 0]\n```"
    assert doc_commands(text) == [
        "rewardkit bon --data p.jsonl --out b.jsonl --reward R [--n 8] [--seed 0]"
    ]


# -- the lines docs/cli/score.md quotes are what `rewardkit score` prints ------------------------
def _quoted(page: Path, prefix: str) -> list[str]:
    """The lines of ``page``'s unlabelled code blocks that start with ``prefix``."""
    blocks = re.findall(r"^```\n(.*?)^```", page.read_text(), flags=re.S | re.M)
    return [line for b in blocks for line in b.splitlines() if line.startswith(prefix)]


def _pattern(line: str) -> re.Pattern[str]:
    """A quoted line as a pattern: ``…`` stands for any text."""
    return re.compile(".*".join(re.escape(part) for part in line.split("…")))


def _score(tmp_path: Path, monkeypatch, spec: str, rows: list[dict]) -> str:
    monkeypatch.chdir(tmp_path)
    Path("in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["score", "-r", spec, "--data", "in.jsonl", "--out", "out.jsonl", "--no-progress"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def _shown(quoted: str, output: str) -> bool:
    return any(_pattern(quoted).fullmatch(line) for line in output.splitlines())


def test_score_md_null_reward_lines_are_what_score_prints(tmp_path, monkeypatch):
    quoted = [q for q in _quoted(DOCS / "cli" / "score.md", "") if "does not apply" in q]
    quoted += _quoted(DOCS / "cli" / "score.md", "warning: no row")
    assert len(quoted) == 2, quoted
    rows = [{"prompt": "2+2?", "response": "4"}, {"prompt": "3+3?", "response": "6"}]
    output = _score(tmp_path, monkeypatch, "rule:math", rows)  # no reference: NaN
    for line in quoted:
        assert _shown(line, output), (line, output)


def test_score_md_failed_alone_line_is_what_score_prints(tmp_path, monkeypatch):
    quoted = [q for q in _quoted(DOCS / "cli" / "score.md", "scored ") if "failed alone" in q]
    assert len(quoted) == 1, quoted
    code = "```python\nprint(input()[::-1])\n```"
    test = {"inputs": ["ab"], "outputs": ["ba"]}
    rows = [
        {"prompt": "reverse", "response": code, "reference": test},
        {"prompt": "reverse", "response": code, "reference": {"foo": 1}},  # not a test
        {"prompt": "reverse", "response": code, "reference": test},
    ]
    output = _score(tmp_path, monkeypatch, "rule:code", rows)
    assert _shown(quoted[0], output), (quoted[0], output)


# -- the validation errors docs/data-formats.md lists are the loader's ---------------------------
_OK = '{"prompt": "p", "chosen": "a", "rejected": "b"}\n'
_RB2 = '{"id": "%s", "prompt": "p", "chosen": ["a"], "rejected": %s, "num_correct": %d, "subset": "s"}\n'
#: One input per line of the doc's list, in its order: (file, content, format).
_ERROR_INPUTS: list[tuple[str, str | bytes, str | None]] = [
    ("data.jsonl", _OK * 6 + '{"prompt": "p", "responses": ["a", "b"], "chosen": 5}\n', None),
    ("data.jsonl", (_OK * 2).encode() + b'{"prompt": "abc\xe9"}\n', None),
    ("data.jsonl", _OK + '{"prompt": "", "chosen": }\n', None),
    (
        "data.json",
        json.dumps([json.loads(_OK), {"prompt": "p", "chosen": None, "rejected": "b"}]),
        None,
    ),
    ("data.csv", "prompt,chosen\np,a\n", None),
    ("data.csv", "prompt,chosen,rejected\np,a,b\np,a\n", None),
    (
        "data.jsonl",
        _OK * 2
        + '{"prompt": [{"role": "bot", "content": "hi"}], "chosen": "a", "rejected": "b"}\n',
        None,
    ),
    ("data.jsonl", _OK * 2 + '{"prompt": "p", "responses": ["a", null], "chosen": 0}\n', None),
    ("data.jsonl", _RB2 % ("a", '["b"]', 1) * 2 + _RB2 % ("b", '["b", "c"]', 2), None),
    ("data.jsonl", _OK + '{"prompt": "p", "chosen": "a", "chosen": "c", "rejected": "b"}\n', None),
    ("data.csv", 'prompt,chosen,rejected\n"p"x,a,b\n', None),
    (
        "data.jsonl",
        '{"prompt": "p", "chosen": "a", "rejected": "b", "subset": ["x"]}\n',
        "rewardbench",
    ),
    (
        "data.jsonl",
        _OK
        * 3
        + '{"prompt": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}, '
        '{"role": "user", "content": ""}], "chosen": "a", "rejected": "b"}\n',
        None,
    ),
    ("data.csv", "prompt,chosen,rejected\np,a,\n", None),
]


def _documented_errors() -> list[str]:
    text = (DOCS / "data-formats.md").read_text()
    section = text.split("## Validation errors", 1)[1]
    return re.search(r"^```\n(.*?)^```", section, flags=re.S | re.M).group(1).splitlines()


def test_data_formats_md_lists_one_error_per_input_here():
    assert len(_documented_errors()) == len(_ERROR_INPUTS)


@pytest.mark.parametrize("i", range(len(_ERROR_INPUTS)))
def test_data_formats_md_validation_error_is_the_loaders(i, tmp_path, monkeypatch):
    from rewardkit.data import load
    from rewardkit.errors import DataError

    name, content, fmt = _ERROR_INPUTS[i]
    monkeypatch.chdir(tmp_path)
    path = Path(name)
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    with pytest.raises(DataError) as err:
        load(name, format=fmt)
    documented = _documented_errors()[i]
    assert str(err.value).startswith(documented), (documented, str(err.value))
