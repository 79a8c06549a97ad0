"""Article files: front matter validated like SOPs, caps, and the starter knowledge base."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from engine.errors import SopErrors
from engine.knowledge.files import (
    MAX_BODY_BYTES,
    load_article_file,
    load_article_folder,
    parse_article,
)
from engine.knowledge.model import ArticleStatus, Audience

KB_DIR = Path(__file__).resolve().parents[2] / "sop_definitions" / "knowledge"

GOOD = """---
id: reset.en
title: Reset your password
category: access
language: en
status: published
keywords: [forgot password]
---
Click **Forgot password**.
"""


def codes(exc: SopErrors) -> list[str]:
    return [e.code for e in exc]


def test_a_good_article_parses_with_defaults() -> None:
    spec = parse_article(GOOD, "reset.md")
    assert (spec.id, spec.translation_of, spec.language) == ("reset.en", "reset", "en")
    assert spec.status is ArticleStatus.PUBLISHED and spec.audience is Audience.PUBLIC
    assert spec.body == "Click **Forgot password**."
    assert spec.keywords == ("forgot password",)


def test_every_problem_is_reported_with_its_line() -> None:
    text = "---\nid: Bad Id\ntitel: x\ncategory: access\nlanguage: fr\nstatus: live\n---\nbody\n"
    with pytest.raises(SopErrors) as info:
        parse_article(text, "bad.md")
    found = {(e.code, e.span.line if e.span else None) for e in info.value}
    assert ("E-KB-VALUE", 2) in found  # id
    assert ("E-KB-UNKNOWN-KEY", 3) in found  # titel
    assert ("E-KB-REQUIRED", 1) in found or any(c == "E-KB-REQUIRED" for c, _ in found)
    assert ("E-KB-VALUE", 5) in found  # language fr
    assert ("E-KB-VALUE", 6) in found  # status live
    hint = next(e.hint for e in info.value if e.code == "E-KB-UNKNOWN-KEY")
    assert hint == "did you mean 'title'?"
    assert str(info.value).startswith("bad.md:")


def test_missing_front_matter_and_unclosed_front_matter() -> None:
    with pytest.raises(SopErrors) as info:
        parse_article("# just markdown\n", "plain.md")
    assert codes(info.value) == ["E-KB-FRONTMATTER"]
    with pytest.raises(SopErrors) as info2:
        parse_article("---\nid: a.en\n", "open.md")
    assert codes(info2.value) == ["E-KB-FRONTMATTER"]


def test_front_matter_goes_through_the_safe_yaml_loader() -> None:
    text = "---\nid: &x a.en\ntitle: *x\ncategory: access\nlanguage: en\n---\nbody\n"
    with pytest.raises(SopErrors) as info:
        parse_article(text, "alias.md")
    assert "E-YAML-ALIAS" in codes(info.value)
    dup = "---\nid: a.en\nid: b.en\ntitle: t\ncategory: access\nlanguage: en\n---\nbody\n"
    with pytest.raises(SopErrors) as info2:
        parse_article(dup, "dup.md")
    assert "E-YAML-DUPKEY" in codes(info2.value)


def test_a_5_mb_article_is_refused_with_its_file_name(tmp_path: Path) -> None:
    big = tmp_path / "huge.md"
    big.write_text(GOOD + "word " * (5 * 1024 * 1024 // 5), encoding="utf-8")
    with pytest.raises(SopErrors) as info:
        load_article_file(big)
    err = info.value.errors[0]
    assert err.code == "E-KB-SIZE"
    assert err.span is not None and err.span.file == str(big)
    assert "KiB" in err.message


def test_a_body_just_over_the_cap_is_refused_at_the_body_line() -> None:
    text = GOOD + "x" * (MAX_BODY_BYTES + 10)
    with pytest.raises(SopErrors) as info:
        parse_article(text, "over.md")
    err = info.value.errors[0]
    assert err.code == "E-KB-SIZE" and err.span is not None and err.span.line == 9


def test_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    f = tmp_path / "latin1.md"
    f.write_bytes(GOOD.replace("Click", "Kl\xefck").encode("latin-1"))
    with pytest.raises(SopErrors) as info:
        load_article_file(f)
    assert codes(info.value) == ["E-KB-ENCODING"]


def test_folder_language_must_match_and_ids_must_be_unique(tmp_path: Path) -> None:
    (tmp_path / "nl").mkdir()
    (tmp_path / "nl" / "a.md").write_text(GOOD, encoding="utf-8")  # language en in nl/
    (tmp_path / "b.md").write_text(GOOD, encoding="utf-8")
    (tmp_path / "c.md").write_text(GOOD, encoding="utf-8")  # same id as b.md
    with pytest.raises(SopErrors) as info:
        load_article_folder(tmp_path)
    assert sorted(codes(info.value)) == ["E-KB-DUPID", "E-KB-VALUE"]


def test_the_starter_knowledge_base_is_valid_and_complete() -> None:
    specs = load_article_folder(KB_DIR)
    assert len(specs) >= 40
    per_lang = Counter(s.language for s in specs)
    assert set(per_lang) == {"en", "nl", "de"}
    groups: dict[str, set[str]] = {}
    for s in specs:
        groups.setdefault(s.translation_of, set()).add(s.language)
        assert s.id == f"{s.translation_of}.{s.language}"
    assert all(langs == {"en", "nl", "de"} for langs in groups.values()), groups
    categories = {s.category for s in specs}
    assert {"access", "billing", "complaint", "warranty", "product_information",
            "general"} <= categories
    assert any(s.audience is Audience.INTERNAL for s in specs)
