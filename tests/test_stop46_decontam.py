"""Decontamination folds accents (docs/curation.md, "Decontamination"): a benchmark text written
with precomposed letters, combining accents, no accents at all, fullwidth letters or ligatures is
one text, on the exact and the n-gram paths alike (``decontaminate.fold``). Letters that marks
tell apart (Devanagari vowel signs, kana voicing marks) and symbols (``≠``) stay apart."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.curate.decontaminate import (
    build_index,
    decontaminate,
    fold,
    ngrams,
    strip_accents,
    turn_form,
)
from rewardkit.data import load
from rewardkit.types import Example, user

runner = CliRunner()
COMPOSED = "Où se trouve le café de Flore à Paris ?"
DECOMPOSED = unicodedata.normalize("NFD", COMPOSED)
#: 17 French words: five 13-grams
SENTENCE = "Le garçon a mangé une crème brûlée très sucrée au café près de la forêt été dernier"


def _ex(i: str, prompt: str, responses=("oui", "non")) -> Example:
    return Example(i, [user(prompt)], list(responses), [0])


def test_the_decomposed_form_is_another_string_but_one_text():
    assert DECOMPOSED != COMPOSED and len(DECOMPOSED) == len(COMPOSED) + 3
    assert fold(DECOMPOSED) == fold(COMPOSED) == "ou se trouve le cafe de flore a paris"


@pytest.mark.parametrize(
    ("copy", "original"),
    [
        (DECOMPOSED, COMPOSED),  # e + U+0301 vs U+00E9 (normalization already matched these)
        ("Ou se trouve le cafe de Flore a Paris?", COMPOSED),  # accents stripped
        ("ＯÙ ＳＥ ＴＲＯＵＶＥ le café de Flore à Paris", COMPOSED),  # fullwidth letters
        ("The ﬁnal oﬃce", "The final office"),  # ligatures ﬁ, ﬃ (NFKC)
        ("Encyclopædia Britannica", "Encyclopaedia Britannica"),  # æ has no decomposition
        ("Łódź, Kraków and Gdańsk", "Lodz, Krakow and Gdansk"),  # ł has no decomposition
        ("İstanbul", "istanbul"),  # casefold gives i + U+0307
        ("Tiếng Việt có dấu", "Tieng Viet co dau"),  # two stacked marks, đ-free
        ("Đà Nẵng", "Da Nang"),
        ("Ἀθῆναι", "Αθηναι"),  # polytonic Greek breathing and circumflex
        ("ёлка", "елка"),  # Cyrillic ё is е + U+0308
        ("שָׁלוֹם", "שלום"),  # Hebrew points
        ("مُحَمَّد", "محمد"),  # Arabic harakat
    ],
)
def test_an_accent_variant_of_a_benchmark_prompt_is_an_exact_copy(copy, original):
    assert fold(copy) == fold(original)
    assert turn_form(copy) == turn_form(original)
    res = decontaminate([_ex("t", copy)], [build_index("ev", [_ex("e", original)])])
    assert [(r["id"], r["eval_id"], r["kind"]) for r in res.removed] == [("t", "e", "exact")]


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("कुल कितने", "कल कितने"),  # Devanagari vowel sign U+0941: another word
        ("がっこう", "かっこう"),  # kana voicing mark (NFKD: か + U+3099): another word
        ("x ≠ 5", "x = 5"),  # ≠ is = + U+0338 under NFKD: a mark on a symbol is kept
    ],
)
def test_marks_that_tell_letters_or_symbols_apart_are_kept(one, other):
    assert fold(one) != fold(other)
    res = decontaminate([_ex("t", one)], [build_index("ev", [_ex("e", other)])])
    assert res.removed == [] and [e.id for e in res.examples] == ["t"]


def test_hangul_and_kana_come_back_composed():
    assert strip_accents("서울") == "서울" and len(strip_accents("서울")) == 2
    assert strip_accents(unicodedata.normalize("NFD", "서울")) == "서울"
    assert strip_accents("が") == "が"  # recomposed, not left as か + U+3099
    assert strip_accents("plain ascii") == "plain ascii"


def test_an_accentless_copy_is_caught_by_its_n_grams():
    # the training row adds words, so the exact test cannot see it; its 13-grams match
    plain = unicodedata.normalize("NFKD", SENTENCE).encode("ascii", "ignore").decode()
    assert plain != SENTENCE and "creme brulee" in plain
    assert ngrams(plain, 13) == ngrams(SENTENCE, 13) and len(ngrams(SENTENCE, 13)) == 5
    index = build_index("ev", [_ex("e", SENTENCE)])
    res = decontaminate([_ex("t", "Please translate: " + plain), _ex("k", "Other text")], [index])
    assert [(r["id"], r["kind"], r["shared"]) for r in res.removed] == [("t", "ngram", 5)]
    assert [e.id for e in res.examples] == ["k"]


def test_an_accented_answer_is_found_among_the_benchmark_responses():
    index = build_index("ev", [_ex("e", "Décrivez un dessert.", (SENTENCE, "non"))])
    copy = _ex("t", "Describe a dessert, please", (DECOMPOSED, SENTENCE.upper()))
    assert decontaminate([copy], [index]).removed == []  # responses are not tested by default
    (hit,) = decontaminate([copy], [index], responses=True).removed
    assert (hit["kind"], hit["eval_id"], hit["shared"]) == ("response_ngram", "e", 5)


def test_the_cli_removes_an_accentless_copy_from_real_files(tmp_path: Path):
    def rows(path: Path, *items: tuple[str, str]) -> Path:
        lines = [{"id": i, "prompt": p, "chosen": "a", "rejected": "b"} for i, p in items]
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines), "utf-8")
        return path

    bench = rows(tmp_path / "bench.jsonl", ("b1", COMPOSED), ("b2", SENTENCE))
    train = rows(
        tmp_path / "train.jsonl",
        ("stripped", "OU SE TROUVE LE CAFE DE FLORE A PARIS"),
        (
            "fullwidth",
            "Le ｇａｒｃｏｎ a mange une creme brulee tres sucree au cafe pres de la foret",
        ),
        ("other", "Où se trouve la tour Eiffel ?"),
    )
    out, report = tmp_path / "out.jsonl", tmp_path / "report.json"
    args = ["--data", train, "--against", bench, "--out", out, "--report", report]
    res = runner.invoke(app, ["curate", "decontaminate", *map(str, args)])
    assert res.exit_code == 0, res.output
    assert [e.id for e in load(str(out))] == ["other"]
    removed = json.loads(report.read_text("utf-8"))["removed"]
    assert [(r["id"], r["eval_id"], r["kind"]) for r in removed] == [
        ("stripped", "b1", "exact"),
        ("fullwidth", "b2", "ngram"),
    ]
