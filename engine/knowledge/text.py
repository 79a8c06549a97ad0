"""Text for search: tokens, stop words, Snowball stems (en/nl/de) and query-language detection.

The same ``stem_text`` runs at index time and at query time, so SQLite FTS5 (whose own
``porter`` tokenizer is English-only) matches "Rechnungen" with "Rechnung" and
"facturen" with "factuur". Language detection is dependency-free: the share of a
language's stop words and marker letters in the text; when the margin is small the caller
searches all languages and prefers the detected one.

Caps: a query is cut to ``MAX_QUERY_CHARS`` characters and ``MAX_QUERY_TERMS`` distinct
terms, so a 100,000-character "question" costs the same as a long e-mail.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache

import snowballstemmer

from engine.knowledge.model import LANGUAGES

__all__ = [
    "MAX_QUERY_CHARS",
    "MAX_QUERY_TERMS",
    "Detected",
    "PreparedQuery",
    "detect_language",
    "prepare_query",
    "split_compound",
    "split_compounds",
    "stem_terms",
    "stem_text",
    "tokens",
]

MAX_QUERY_CHARS = 2000
MAX_QUERY_TERMS = 48

_SNOWBALL = {"en": "english", "nl": "dutch", "de": "german"}
_WORD = re.compile(r"[^\W_]+", re.UNICODE)

STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        """a about above after again all am an and any are as at be because been before being
        below between both but by can could did do does doing down during each few for from
        further had has have having he her here hers him his how i if in into is it its itself
        just me more most my myself no nor not now of off on once only or other our ours out over
        own same she should so some such than that the their theirs them then there these they
        this those through to too under until up very was we were what when where which while
        who whom why will with would you your yours yourself hi hello dear please thanks thank
        regards can't don't i'm i've it's get got im ive want wants would like need help question
        anyone hey thx""".split()
    ),
    "nl": frozenset(
        """aan al alle als alsof altijd andere ben bij daar dan dat de der deze die dit doch doen
        door dus een eens en er ge geen geweest haar had heb hebben heeft hem het hier hij hoe
        hun iemand iets ik in is ja je jij jou jouw jullie kan kon kunnen maar me meer men met
        mij mijn moet na naar niet niets nog nu of om omdat onder ons ook op over reeds te tegen
        toch toen tot u uw uit van veel voor want waren was wat we wel werd wie wij wil worden
        zal ze zei zelf zich zij zijn zo zonder zou hallo beste graag bedankt dank groet groeten
        mvg hoi wilt wil kunt krijg helpen help vraag vraagje""".split()
    ),
    "de": frozenset(
        """aber alle allem allen aller alles als also am an ander andere anderem anderen anderer
        anderes auch auf aus bei bin bis bist da damit dann das dass dein deine dem den der des
        dessen dich die dies diese diesem diesen dieser dieses dir doch dort du durch ein eine
        einem einen einer eines er es etwas euch euer eure für gegen gewesen hab habe haben hat
        hatte hier hin hinter ich ihm ihn ihnen ihr ihre im in indem ins ist jede jedem jeden
        jeder jedes jetzt kann kein keine können könnte man manche mein meine mich mir mit muss
        nach nicht nichts noch nun nur ob oder ohne sehr sein seine sich sie sind so solche soll
        sollte sondern um und uns unser unter viel vom von vor war waren warum was weil welche
        wenn werde werden wie wieder will wir wird wo wollen würde zu zum zur über hallo guten
        tag danke bitte grüße gruß freundlichen möchte möchten ich's gibt helfen hilfe frage""".split()
    ),
}

# Courtesy and filler words of customer messages ("please help", "a question") are stop words
# too: they carry no topic, and an unknown word lowers the e-level's confidence.

#: letters or letter groups that point to one language (weak evidence)
_MARKERS = {
    "de": re.compile(r"[äöüß]|sch|ung\b|lich\b"),
    "nl": re.compile(r"ij|oe|aa|uu|\bgeen\b|tje\b"),
    "en": re.compile(r"\bth|ing\b|tion\b|w[hr]"),
}


@lru_cache(maxsize=8)
def _stemmer(language: str) -> snowballstemmer.Stemmer:
    return snowballstemmer.stemmer(_SNOWBALL[language])


@lru_cache(maxsize=200_000)
def _stem(language: str, word: str) -> str:
    """One word's stem; memoised because the same words recur across articles and queries
    (the pure-Python stemmers cost ~0.1 ms a word)."""
    return str(_stemmer(language).stemWord(word))


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens (letters and digits; punctuation and markup dropped).

    >>> tokens("Where's my INVOICE #123?")
    ['where', 's', 'my', 'invoice', '123']
    """
    return _WORD.findall(text.casefold())


def stem_terms(text: str, language: str, *, keep_stopwords: bool = False) -> list[str]:
    """The Snowball stems of ``text``'s words in ``language``, stop words removed.

    >>> stem_terms("Meine Rechnungen sind falsch", "de")
    ['rechnung', 'falsch']
    """
    stops = STOPWORDS[language]
    return [_stem(language, w) for w in tokens(text)
            if keep_stopwords or (w not in stops and len(w) > 1)]


def stem_text(text: str, language: str) -> str:
    """``stem_terms`` joined by spaces: what the FTS5 index stores and matches."""
    return " ".join(stem_terms(text, language))


@dataclass(frozen=True, slots=True)
class Detected:
    """The detected language; ``sure`` is False when the evidence is thin or close."""

    language: str
    sure: bool
    scores: tuple[tuple[str, float], ...]


def detect_language(text: str, default: str = "en") -> Detected:
    """Guess en/nl/de from stop words (strong) and marker letters (weak).

    >>> detect_language("Ich habe mein Passwort vergessen").language
    'de'
    >>> detect_language("Ik ben mijn wachtwoord vergeten").language
    'nl'
    """
    words = tokens(text[:MAX_QUERY_CHARS])
    scores: dict[str, float] = {}
    for lang in LANGUAGES:
        stop_hits = sum(1 for w in words if w in STOPWORDS[lang])
        marks = len(_MARKERS[lang].findall(" ".join(words)))
        scores[lang] = stop_hits + 0.25 * marks
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], LANGUAGES.index(kv[0])))
    best, best_score = ranked[0]
    second = ranked[1][1]
    if best_score <= 0:
        return Detected(default, False, tuple(ranked))
    sure = best_score >= 1.0 and best_score >= 1.5 * second + 0.5
    return Detected(best, sure, tuple(ranked))


@dataclass(frozen=True, slots=True)
class PreparedQuery:
    """A query cut to the caps, with its language and per-language stems."""

    text: str
    language: str
    language_sure: bool
    stems: dict[str, tuple[str, ...]]
    truncated: bool
    #: distinct non-stop words (any language), capped: what PostgreSQL stems itself
    words: tuple[str, ...] = ()

    def terms(self, language: str) -> tuple[str, ...]:
        return self.stems.get(language, ())


def prepare_query(text: str, language: str | None = None) -> PreparedQuery:
    """Cap, detect the language (unless given) and stem the query for every language.

    Args:
        text: the customer's words (subject + body, a chat message, an agent's search).
        language: force a language (``en``/``nl``/``de``); None detects it.
    """
    truncated = len(text) > MAX_QUERY_CHARS
    capped = text[:MAX_QUERY_CHARS]
    if language in LANGUAGES:
        lang, sure = language, True
    else:
        found = detect_language(capped)
        lang, sure = found.language, found.sure
    stems: dict[str, tuple[str, ...]] = {}
    for code in LANGUAGES:
        seen: dict[str, None] = {}
        for term in stem_terms(capped, code):
            if term not in seen and len(seen) >= MAX_QUERY_TERMS:
                truncated = True
                break
            seen.setdefault(term, None)
        stems[code] = tuple(seen)
    all_stops = STOPWORDS["en"] | STOPWORDS["nl"] | STOPWORDS["de"]
    words = tuple(dict.fromkeys(w for w in tokens(capped) if w not in all_stops and len(w) > 1))
    if len(words) > MAX_QUERY_TERMS:
        words, truncated = words[:MAX_QUERY_TERMS], True
    return PreparedQuery(capped, lang, sure, stems, truncated, words)


#: languages that glue nouns together ("Kartenzahlung", "verzendbevestiging")
COMPOUNDING = ("nl", "de")
_LINKS = ("", "s", "n", "en", "e", "es", "er")


def split_compound(word: str, language: str, vocabulary: Collection[str]) -> list[str] | None:
    """Split ``word`` into two parts whose stems the knowledge base knows, or None.

    Only words of 8+ letters are tried; each part keeps at least 3 letters; the first part
    may end in a linking morpheme (``s``, ``n``, ``en``, ``e``, ``es``, ``er``).

    >>> split_compound("kartenzahlung", "de", {"kart", "zahlung"})
    ['karten', 'zahlung']
    >>> split_compound("rechnungsadresse", "de", {"rechnung", "adress"})
    ['rechnungs', 'adresse']
    """
    if len(word) < 8 or not word.isalpha():
        return None
    stemmer = _stemmer(language)
    for i in range(3, len(word) - 2):
        head, tail = word[:i], word[i:]
        tail_stem = stemmer.stemWord(tail)
        if tail_stem not in vocabulary:
            continue
        for link in _LINKS:
            if link and not head.endswith(link):
                continue
            part = head[: len(head) - len(link)]
            if len(part) >= 3 and stemmer.stemWord(part) in vocabulary:
                return [part, tail]
    return None


def split_compounds(query: PreparedQuery,
                    vocabularies: Mapping[str, Collection[str]]) -> PreparedQuery:
    """The query with unknown Dutch/German compounds replaced by their known parts.

    Runs at query time against the stems the published articles contain, so "Kartenzahlung"
    also searches "Karte" + "Zahlung". Words the knowledge base knows stay as they are.
    """
    stems = dict(query.stems)
    words = list(query.words)
    changed = False
    for language in COMPOUNDING:
        vocab = vocabularies.get(language)
        if not vocab:
            continue
        stemmer = _stemmer(language)
        out: dict[str, None] = {}
        for word in tokens(query.text):
            if word in STOPWORDS[language] or len(word) <= 1:
                continue
            stem = stemmer.stemWord(word)
            parts = None if stem in vocab else split_compound(word, language, vocab)
            if parts is None:
                out.setdefault(stem, None)
                continue
            changed = True
            for part in parts:
                out.setdefault(stemmer.stemWord(part), None)
                if part not in words and len(words) < MAX_QUERY_TERMS:
                    words.append(part)
        stems[language] = tuple(out)[:MAX_QUERY_TERMS]
    return replace(query, stems=stems, words=tuple(words)) if changed else query
