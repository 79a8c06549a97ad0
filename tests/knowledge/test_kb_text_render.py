"""Stemming, language detection and query caps; Markdown rendered safely."""

from __future__ import annotations

import time

import pytest

from engine.knowledge.render import render_html, render_text
from engine.knowledge.text import (
    MAX_QUERY_CHARS,
    MAX_QUERY_TERMS,
    detect_language,
    prepare_query,
    stem_terms,
)


@pytest.mark.parametrize(("lang", "plural", "singular"), [
    ("en", "Invoices and refunds", "invoice refunded"),
    ("nl", "Mijn facturen en bestellingen", "factuur bestelling"),
    ("de", "Meine Rechnungen und Passwörter", "Rechnung Passwort"),
])
def test_snowball_stems_match_inflected_forms(lang: str, plural: str, singular: str) -> None:
    """Stop words go, and plural and singular forms share one stem."""
    assert stem_terms(plural, lang) == stem_terms(singular, lang)
    assert len(stem_terms(plural, lang)) == 2


@pytest.mark.parametrize(("text", "lang"), [
    ("I forgot my password and cannot log in", "en"),
    ("Ik ben mijn wachtwoord vergeten en kan niet inloggen", "nl"),
    ("Ich habe mein Passwort vergessen und kann mich nicht anmelden", "de"),
    ("Wo ist meine Bestellung?", "de"),
    ("Waar is mijn bestelling?", "nl"),
    ("Where is my order?", "en"),
])
def test_language_detection(text: str, lang: str) -> None:
    assert detect_language(text).language == lang


def test_unsure_detection_is_flagged() -> None:
    found = detect_language("iPhone 15")
    assert found.sure is False


def test_a_100000_character_query_is_capped_quickly() -> None:
    text = "password " * 5000 + " ".join(f"word{i}" for i in range(20000))
    assert len(text) > 100_000
    start = time.perf_counter()
    q = prepare_query(text)
    elapsed = time.perf_counter() - start
    assert q.truncated is True
    assert len(q.text) == MAX_QUERY_CHARS
    assert all(len(terms) <= MAX_QUERY_TERMS for terms in q.stems.values())
    assert len(q.words) <= MAX_QUERY_TERMS
    assert elapsed < 1.0  # a generous bound: the cap makes it milliseconds


def test_query_syntax_characters_are_just_dropped() -> None:
    q = prepare_query('password" OR "x" NEAR(a b) * AND NOT -- ; DROP TABLE kb_articles', "en")
    assert all(t.isalnum() for t in q.terms("en"))


def test_script_in_markdown_is_escaped_not_executed() -> None:
    html = render_html("Hello <script>alert('x')</script> <img src=x onerror=alert(1)>")
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html


def test_dangerous_link_schemes_are_not_linked() -> None:
    html = render_html("[click](javascript:alert(1)) [ok](https://example.org/help)")
    assert 'href="javascript:' not in html
    assert '<a href="https://example.org/help">ok</a>' in html


def test_plain_text_keeps_words_and_link_targets() -> None:
    text = render_text("## Steps\n1. Open **Settings**\n2. See [help](https://x.example/h)")
    assert text == "Steps\n1. Open Settings\n2. See help (https://x.example/h)"


def test_unknown_compounds_are_split_into_known_parts() -> None:
    from engine.knowledge.text import split_compounds

    vocab = {"de": {"kart", "zahlung", "fehlgeschlag"}, "nl": {"verzend", "bevestig"}}
    q = split_compounds(prepare_query("Meine Kartenzahlung ist fehlgeschlagen", "de"), vocab)
    assert q.terms("de") == ("kart", "zahlung", "fehlgeschlag")
    assert {"karten", "zahlung"} <= set(q.words)
    known = split_compounds(prepare_query("Zahlung fehlgeschlagen", "de"), vocab)
    assert known.terms("de") == ("zahlung", "fehlgeschlag")
