"""Executable spec of the safe YAML loader: spans, every YAML hazard, hostile inputs."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import engine.sop.loader as loader
from engine.errors import LoadError, SopErrors, SourceSpan
from engine.sop.loader import MAX_BYTES, format_json_path, load_yaml_file, load_yaml_text

ALIAS_BOMB = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
)


@pytest.fixture(params=["libyaml", "pure-python"])
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run a test with libyaml's event parser and with PyYAML's pure-Python one."""
    if request.param == "libyaml" and not hasattr(__import__("yaml"), "CSafeLoader"):
        pytest.skip("PyYAML without libyaml")
    monkeypatch.setattr(loader, "USE_LIBYAML", request.param == "libyaml")
    yield request.param


def codes(text: str) -> list[str]:
    with pytest.raises(SopErrors) as info:
        load_yaml_text(text, "t.yaml")
    return [e.code for e in info.value]


def only_error(text: str) -> LoadError:
    with pytest.raises(SopErrors) as info:
        load_yaml_text(text, "t.yaml")
    assert len(info.value) == 1, str(info.value)
    err = info.value.errors[0]
    assert isinstance(err, LoadError)
    return err


def test_every_value_and_key_keeps_its_span(parser: str) -> None:
    doc = load_yaml_text("kind: sop\nnodes:\n  triage:\n    next: 'done'\n    list: [a, b]\n", "f.yaml")
    assert doc.span(()) == SourceSpan("f.yaml", 1, 1)
    assert doc.span(("nodes", "triage", "next")) == SourceSpan("f.yaml", 4, 11)
    assert doc.key_span(("nodes", "triage")) == SourceSpan("f.yaml", 3, 3)
    assert doc.span(("nodes", "triage", "list", 1)) == SourceSpan("f.yaml", 5, 15)
    # a quoted string's text starts one column after the quote
    assert doc.text_span(("nodes", "triage", "next"), 0) == SourceSpan("f.yaml", 4, 12)
    # a path that does not exist falls back to its nearest ancestor
    assert doc.span(("nodes", "triage", "missing")) == SourceSpan("f.yaml", 4, 5)


def test_scalars_follow_yaml_1_2_not_1_1(parser: str) -> None:
    doc = load_yaml_text(
        "t: true\nf: False\ni: 42\nneg: -3\nlead: 010\nx: 1.5\ne: 1e3\nsexa: 1:30\n"
        "date: 2026-01-01\nnull1: ~\nnull2:\nq: 'yes'\ntagged: !!str no\nhex: 0x1F\n", "f.yaml")
    assert doc.data == {
        "t": True, "f": False, "i": 42, "neg": -3, "lead": 10, "x": 1.5, "e": 1000.0,
        "sexa": "1:30", "date": "2026-01-01", "null1": None, "null2": None, "q": "yes",
        "tagged": "no", "hex": "0x1F",
    }
    assert type(doc.data["i"]) is int and type(doc.data["t"]) is bool


@pytest.mark.parametrize("word", ["yes", "No", "ON", "off", "y", "n", "Yes"])
def test_yaml_1_1_boolean_words_are_refused_with_a_hint(parser: str, word: str) -> None:
    err = only_error(f"ok: true\nflag: {word}\n")
    assert err.code == "E-YAML-BOOL"
    assert (err.span.line, err.span.column) == (2, 7)  # type: ignore[union-attr]
    assert err.hint is not None and "quote it" in err.hint and "true/false" in err.hint
    assert err.json_path == "$.flag"


def test_on_as_a_key_stays_the_string_on(parser: str) -> None:
    doc = load_yaml_text("on:\n  - event: x\n", "f.yaml")
    assert doc.data == {"on": [{"event": "x"}]}


def test_duplicate_keys_name_both_lines(parser: str) -> None:
    err = only_error("nodes:\n  a: 1\n  b: 2\n  a: 3\n")
    assert err.code == "E-YAML-DUPKEY"
    assert (err.span.line, err.span.column) == (4, 3)  # type: ignore[union-attr]
    assert "line 2" in err.message
    assert err.hint is not None and "line 2" in err.hint and "line 4" in err.hint


def test_anchors_and_aliases_are_refused_and_every_one_reported(parser: str) -> None:
    found = codes("a: &x 1\nb: *x\nc: *x\n")
    assert found == ["E-YAML-ALIAS"] * 3


def test_merge_keys_are_refused(parser: str) -> None:
    assert codes("<<: {a: 1}\nb: 2\n") == ["E-YAML-ALIAS"]


@pytest.mark.parametrize("text", ["a: !!python/object:os.system x\n", "a: !custom {b: 1}\n",
                                  "a: !!binary aGVsbG8=\n", "a: !!set {x}\n"])
def test_non_standard_tags_are_refused(parser: str, text: str) -> None:
    assert codes(text) == ["E-YAML-TAG"]


def test_syntax_errors_have_a_position(parser: str) -> None:
    err = only_error("a: [1, 2\nb: 3\n")
    assert err.code == "E-YAML-SYNTAX"
    assert err.span is not None and err.span.line >= 2


def test_complex_keys_are_refused(parser: str) -> None:
    assert codes("? [a, b]\n: c\n") == ["E-YAML-KEY"]


def test_several_documents_in_one_file_are_refused(parser: str) -> None:
    err = only_error("a: 1\n---\nb: 2\n")
    assert err.code == "E-YAML-MULTIDOC"
    assert err.span is not None and err.span.line == 2


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_an_empty_document_is_an_error(parser: str, text: str) -> None:
    assert codes(text) == ["E-YAML-EMPTY"]


def test_control_characters_are_refused(parser: str) -> None:
    err = only_error("a: ok\nb: x\x07y\n")
    assert err.code == "E-YAML-ENCODING"
    assert err.span is not None and err.span.line == 2


def test_non_utf8_file_gets_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("kind: sop\ntitle: caf\xe9\n".encode("latin-1"))
    with pytest.raises(SopErrors) as info:
        load_yaml_file(path)
    (err,) = info.value.errors
    assert err.code == "E-YAML-ENCODING"
    assert "UTF-8" in err.message and "0xe9" in err.message
    assert err.span == SourceSpan(str(path), 2, 11)


def test_missing_file_is_an_io_error(tmp_path: Path) -> None:
    with pytest.raises(SopErrors) as info:
        load_yaml_file(tmp_path / "nope.yaml")
    assert [e.code for e in info.value] == ["E-IO"]


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfkind: sop\n")
    assert load_yaml_file(path).data == {"kind": "sop"}


def test_depth_cap_counts_block_and_flow_nesting(parser: str) -> None:
    ok = "a:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 60)) + " " * 60 + "v: 1\n"
    load_yaml_text(ok)
    deep = "a:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 80)) + " " * 80 + "v: 1\n"
    assert codes(deep) == ["E-YAML-DEPTH"]
    assert codes("x: " + "[" * 70 + "]" * 70) == ["E-YAML-DEPTH"]
    assert codes("- " * 70 + "x") == ["E-YAML-DEPTH"]


def test_brackets_inside_strings_and_comments_do_not_count(parser: str) -> None:
    text = 'x: "' + "[" * 100 + '"\ny: it\'s [[[ # ' + "[" * 100 + "\nz: ['" + "{" * 100 + "']\n"
    doc = load_yaml_text(text)
    assert doc.data["x"] == "[" * 100
    assert doc.data["z"] == ["{" * 100]


def _assert_fast_rejection(text: str, code: str) -> float:
    t0 = time.perf_counter()
    with pytest.raises(SopErrors) as info:
        load_yaml_text(text)
    elapsed = time.perf_counter() - t0
    assert code in [e.code for e in info.value]
    return elapsed


HOSTILE = {
    "alias-bomb": (ALIAS_BOMB, "E-YAML-ALIAS"),
    "30000-brackets": ("[" * 30_000, "E-YAML-DEPTH"),
    "30000-braces": ("{" * 30_000, "E-YAML-DEPTH"),
    "10-MB": ("a: b\n" * 2_000_000, "E-YAML-SIZE"),
    "dash-chain": ("- " * 400_000 + "x", "E-YAML-DEPTH"),
    "duplicate-keys": ("".join(f"k{i % 10}: v\n" for i in range(1000)), "E-YAML-DUPKEY"),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_inputs_are_rejected_fast(parser: str, name: str) -> None:
    text, code = HOSTILE[name]
    # the target is < 100 ms (benchmarks/bench_compile.py prints real figures);
    # asserted generously here because the test machine is shared
    assert _assert_fast_rejection(text, code) < 1.0


def test_alias_bomb_never_expands() -> None:
    assert len(ALIAS_BOMB.encode()) < 500  # 9 levels: 9**8 "lol" when expanded
    errors = only_error_list(ALIAS_BOMB)
    assert len(errors) <= 101  # capped, not one per expansion
    assert errors[-1].code in ("E-TOO-MANY", "E-YAML-ALIAS")


def only_error_list(text: str) -> list[LoadError]:
    with pytest.raises(SopErrors) as info:
        load_yaml_text(text)
    return list(info.value.errors)  # type: ignore[arg-type]


def test_oversized_file_is_refused_before_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"a: b\n" * (MAX_BYTES // 5 + 10))
    with pytest.raises(SopErrors) as info:
        load_yaml_file(path)
    assert [e.code for e in info.value] == ["E-YAML-SIZE"]


def test_deep_nesting_never_crashes_the_process() -> None:
    """PyYAML's C composer segfaults on 30,000 '['; ours must exit cleanly with an error."""
    code = (
        "from engine.errors import SopErrors\n"
        "from engine.sop.loader import load_yaml_text\n"
        "for text in ['[' * 30000, '{' * 30000, '- ' * 100000, 'a:\\n' + '[' * 30000]:\n"
        "    try:\n        load_yaml_text(text)\n"
        "    except SopErrors as exc:\n        print(exc.errors[0].code)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["E-YAML-DEPTH"] * 4


def test_format_json_path() -> None:
    assert format_json_path(()) == "$"
    assert format_json_path(("nodes", "triage", "branches", 0, "when")) == \
        "$.nodes.triage.branches[0].when"
    assert format_json_path(("data", "a-b")) == "$.data['a-b']"


def test_both_parsers_agree_on_the_example(example_text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "USE_LIBYAML", False)
    pure = load_yaml_text(example_text, "x.yaml")
    monkeypatch.setattr(loader, "USE_LIBYAML", True)
    fast = load_yaml_text(example_text, "x.yaml")
    assert pure.data == fast.data
    assert pure.marks == fast.marks
    assert pure.key_marks == fast.key_marks
    assert pure.quoted == fast.quoted
