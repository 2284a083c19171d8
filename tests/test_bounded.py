"""Input cannot make the engine slow or its memory grow (issue 10, item 12): the did-you-mean
search does a bounded amount of work per item, every cache that input can fill has a bound, and a
quote is looked up in its source in linear time, however long the quote and the source.

Nothing here is timed: each test counts the work done, or inspects the caches. The speed and memory
figures are measured in bench/ (`python bench/memory.py`).
"""

from __future__ import annotations

import difflib
import random
import shutil
import string
from pathlib import Path
from typing import Any

import pytest
import yaml
from rapidfuzz.distance import DamerauLevenshtein

from engine import KnowledgeBase, evaluate, evidence, statements, suggestions, terminology
from engine import compiler as compiler_module
from engine import facts as facts_module
from engine import knowledge_base as knowledge_base_module
from engine import vocabulary as vocabulary_module
from engine.evidence import Source, SourceRecord, normalise_space
from engine.suggestions import CLOSE, closest, similarity

REPO = Path(__file__).resolve().parent.parent


class Distances:
    """Stands in for rapidfuzz's DamerauLevenshtein in engine.suggestions: every distance the
    did-you-mean search computes is recorded."""

    def __init__(self) -> None:
        self.pairs: list[tuple[str, str]] = []

    def normalized_similarity(self, a: str, b: str, **options: Any) -> float:
        self.pairs.append((a, b))
        return DamerauLevenshtein.normalized_similarity(a, b, **options)


@pytest.fixture
def distances(monkeypatch: pytest.MonkeyPatch) -> Distances:
    counting = Distances()
    monkeypatch.setattr(suggestions, "DamerauLevenshtein", counting)
    return counting


def _word(rng: random.Random, low: int, high: int) -> str:
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(low, high)))


# -- (a) suggestion work per item -----------------------------------------------------------------


def test_a_label_longer_than_any_name_is_compared_with_nothing(kb, distances):
    names = kb.vocabulary.all_names()
    assert closest("x" * 10_000, names) == []
    assert closest(" ".join(["clonazepam"] * 1000), names) == []
    assert kb.vocabulary.suggestions("a" * 10_000) == []
    assert kb.vocabulary.suggestions("panic " * 2000, kind="condition") == []
    assert distances.pairs == []


def test_a_scenario_of_long_unknown_labels_computes_no_distance(distances):
    rng = random.Random(12)
    labels = [" ".join(_word(rng, 30, 45) for _ in range(5))[:200] for _ in range(100)]
    result = evaluate({"conditions": labels[:50], "medications": labels[50:]})
    assert len(result.unrecognized) == 100
    assert all(u.suggestions == [] for u in result.unrecognized)
    assert distances.pairs == []


def test_suggestion_work_per_item_is_bounded(kb, distances):
    """Each item costs at most one distance per word of each name, and only between words whose
    lengths allow them to be CLOSE (the distance is at least the difference of the lengths)."""
    vocab = kb.vocabulary
    rng = random.Random(3)
    names = list(vocab.all_names())
    words_of_names = sum(len(n.split()) for n in names)
    for i in range(300):
        if i % 2:  # a typo of a name
            name = rng.choice(names)
            at = rng.randrange(len(name))
            text = name[:at] + rng.choice(string.ascii_lowercase) + name[at + 1 :]
        else:  # made-up words
            text = " ".join(_word(rng, 1, 14) for _ in range(rng.randint(1, 6)))
        distances.pairs.clear()
        vocab._suggested.clear()  # worked out afresh
        vocab.suggestions(text)
        assert len(distances.pairs) <= words_of_names
        for a, b in distances.pairs:
            assert min(len(a), len(b)) >= (CLOSE - 1e-9) * max(len(a), len(b)), (a, b)


def _reference_similarity(given: str, name: str) -> float:
    """The did-you-mean similarity as first written: every word compared, no shortcut."""
    words, known = given.split(), name.split()
    if not words or len(words) not in (len(known), len(known) - 1):
        return 0.0
    scores = [suggestions.word_similarity(g, k) for g, k in zip(words, known, strict=False)]
    if min(scores) < CLOSE:
        return 0.0
    whole = 1.0 if len(words) == len(known) else 0.99
    return whole * sum(scores) / len(scores)


def test_the_shortcuts_change_no_suggestion(kb):
    """Pruning by length and stopping at the first word that is not close give exactly the
    scores of comparing every word, for typos of every name and for near misses."""
    rng = random.Random(5)
    names = list(kb.vocabulary.all_names())
    edits = [
        lambda w, i: w[:i] + w[i + 1 :],
        lambda w, i: w[:i] + rng.choice("aeioulnrst") + w[i:],
        lambda w, i: w[:i] + rng.choice("aeioulnrst") + w[i + 1 :],
        lambda w, i: w[:i] + w[i + 1 : i + 2] + w[i : i + 1] + w[i + 2 :],
    ]
    spellings = set()
    for name in names:
        words = name.split()
        for _ in range(6):
            changed = list(words)
            for _ in range(rng.randint(1, 3)):
                j = rng.randrange(len(changed))
                w = changed[j]
                changed[j] = rng.choice(edits)(w, rng.randrange(len(w))) or w
            spellings.add(" ".join(changed))
            spellings.add(" ".join(changed[:-1]) or changed[0])
    for spelling in spellings:
        for name in names:
            assert similarity(spelling, name) == _reference_similarity(spelling, name)
    assert similarity("clonazapam", "clonazepam") == pytest.approx(0.9)


# -- (b) caches that input fills ------------------------------------------------------------------


def _respell(rng: random.Random, name: str) -> str:
    out = "".join(c.upper() if rng.random() < 0.3 else c for c in name)
    return out.replace(" ", " " * rng.randint(1, 3)) + " " * rng.randint(0, 3)


def test_every_cache_that_input_fills_stays_within_its_bound():
    """10,000 scenarios of text and codes never seen before (about 5,000 fill every cache): each
    cache fills up to its bound and
    no further; what else the vocabulary and the pack remember is bounded by the pack itself."""
    import simple_icd_10_cm

    kb = KnowledgeBase.load(REPO / "rules")
    vocab = kb.vocabulary
    rng = random.Random(10_000)
    conditions = [c.label for c in vocab.concepts.values() if c.kind == "condition"]
    drugs = [c.label for c in vocab.concepts.values() if c.kind == "drug"]
    icd = [c for c in simple_icd_10_cm.get_all_codes(False) if "-" not in c]
    for i in range(10_000):
        letter = rng.choice("ABCDEFGHJKLMNOPQRSTVWXYZ")
        shaped = f"{letter}{rng.randrange(100):02d}.{rng.randrange(10**4)}"
        drug = rng.choice(drugs)
        at = rng.randrange(len(drug))
        evaluate(
            {
                "id": f"case-{i}",
                "conditions": [
                    _word(rng, 4, 12),
                    _respell(rng, rng.choice(conditions)),
                    {"code": rng.choice(icd), "system": "ICD-10-CM"},
                    {"code": shaped, "system": "ICD-10-CM"},
                ],
                "medications": [drug[:at] + rng.choice(string.ascii_lowercase) + drug[at + 1 :]],
                "therapy": {"line": rng.randint(1, 4)},
            },
            knowledge_base=kb,
        )
    bounded = {
        "_seen": vocabulary_module.SPELLINGS_BOUND,
        "_suggested": vocabulary_module.SUGGESTIONS_BOUND,
        "_could_be_code": vocabulary_module.CODES_BOUND,
        "items_read": facts_module.ITEMS_BOUND,
    }
    for name, bound in bounded.items():
        # filled by the input, and held there (a sixteenth is dropped at a time)
        assert bound - bound // 16 <= len(getattr(vocab, name)) <= bound, name
    assert len(vocab._ambiguities) <= vocabulary_module.SPELLINGS_BOUND
    bound = statements.REASONS_BOUND
    assert bound - bound // 16 <= len(kb.reason_cache) <= bound
    # the fast path's: durable_rules' answers by fact, and the text of each fact property
    assert len(kb.matcher._answers) <= kb.matcher.answers == knowledge_base_module.ANSWERS_BOUND
    assert 0 < len(kb.program._texts) <= compiler_module.TEXTS_BOUND
    pack_bound = (len(vocab.concepts) + len(kb.rules)) ** 2
    for owner in (vocab, kb):
        for name, value in vars(owner).items():
            if isinstance(value, dict) and name not in bounded and name != "reason_cache":
                assert len(value) <= pack_bound, name
    cached = [f for f in vars(terminology).values() if hasattr(f, "cache_info")]
    assert cached
    for function in cached:
        info = function.cache_info()
        assert info.maxsize is not None and info.maxsize <= terminology.CODES_CACHED
        assert info.currsize <= info.maxsize
    assert terminology.icd_description.cache_info().currsize == terminology.CODES_CACHED


# -- (c) quotes in long sources -------------------------------------------------------------------

_RECORD = SourceRecord.model_validate(
    {
        "id": "big",
        "title": "big",
        "text": "big.txt",
        "attribution": {"work": "w", "license": "l"},
        "provenance": "p",
    }
)


def _reference_find_words(text: str, quote: str) -> int:
    """Whole-word lookup as first written: try every occurrence in turn."""
    quote = normalise_space(quote)
    start = text.find(quote)
    while start >= 0:
        end = start + len(quote)
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if not (before.isalnum() and quote[:1].isalnum()) and not (
            after.isalnum() and quote[-1:].isalnum()
        ):
            return start
        start = text.find(quote, start + 1)
    return -1


class Searches:
    """Counts the substring searches a Source makes (engine.evidence._search)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls = 0

    def __call__(self, *args: Any) -> int:
        self.calls += 1
        return self.real(*args)


@pytest.fixture
def searches(monkeypatch: pytest.MonkeyPatch) -> Searches:
    counting = Searches(evidence._search)
    monkeypatch.setattr(evidence, "_search", counting)
    return counting


def _trap(repeats: int, span: int) -> tuple[str, str]:
    """A text where the quote occurs `repeats` times inside words before it occurs as whole
    words: 'ab ab ... ab b ab ab ... ab', and the quote 'b ab ... ab'."""
    quote = "b" + " ab" * span
    return "ab " * repeats + quote, quote


def test_whole_word_lookup_is_one_search_however_often_the_quote_occurs_inside_words(searches):
    raw, quote = _trap(330_000, 30_000)  # a 1 MB source; the quote is 90 KB
    source = Source(_RECORD, raw)
    assert len(source.text) > 1_000_000
    assert source.find_words(quote) == 3 * 330_000
    assert searches.calls <= 1
    searches.calls = 0
    assert source.find_words(quote[:-1]) == -1  # it ends inside 'ab', wherever it occurs
    assert searches.calls <= 1
    small_text, small_quote = _trap(300, 30)
    for q in (small_quote, small_quote[:-1], small_quote[2:], "ab " + small_quote):
        found = Source(_RECORD, small_text).find_words(q)
        assert found == _reference_find_words(small_text, q), q


@pytest.mark.parametrize("wide", [False, True])
def test_whole_word_lookup_finds_what_trying_every_occurrence_finds(monkeypatch, wide):
    if wide:  # as for a source with more distinct words than there are characters
        monkeypatch.setattr(evidence, "_CODES", 3)
        monkeypatch.setattr(evidence, "_WIDE", 60)
    rng = random.Random(9)
    alphabet = "ab .,'-é1"
    for _ in range(3000):
        text = normalise_space("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))))
        if not text:
            continue
        start = rng.randrange(len(text))
        quote = text[start : start + rng.randint(1, 12)].strip()
        if rng.random() < 0.2:
            quote = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 4))).strip()
        if not quote:
            continue
        source = Source(_RECORD, text)
        assert source.find_words(quote) == _reference_find_words(source.text, quote), (text, quote)


def test_sentences_of_a_long_quote_are_found_without_scanning_every_sentence(searches):
    raw = " ".join(f"Sentence number {i} says a thing." for i in range(40_000))  # 1.3 MB
    source = Source(_RECORD, raw)
    quote = " ".join(f"Sentence number {i} says a thing." for i in range(100, 30_100))
    found = source.sentences_of(quote)
    assert [s.number for s in found] == list(range(101, 30_101))
    assert searches.calls == 1


def test_the_nearest_sentence_to_a_long_quote_is_a_bounded_comparison(monkeypatch, searches):
    """A quote not in the source gets a 'nearest sentence' hint: each comparison is of a bounded
    length, made only where it can win, and the quote's first half is searched a bounded number
    of times."""
    compared: list[tuple[int, int]] = []

    class Matcher(difflib.SequenceMatcher):
        def __init__(self, junk: Any, a: str, b: str, autojunk: bool = True) -> None:
            compared.append((len(a), len(b)))
            super().__init__(junk, a, b, autojunk=autojunk)

    monkeypatch.setattr(evidence.difflib, "SequenceMatcher", Matcher)
    raw = ". ".join("Ab ab ab ab" for _ in range(100_000)) + "."  # 1.2 MB, short sentences
    source = Source(_RECORD, raw)
    quote = "ab " * 330_000 + "zz"  # 1 MB, not in the source
    source.nearest_sentence(quote)
    assert all(a <= evidence.HINT_CHARS and b <= evidence.HINT_CHARS for a, b in compared)
    assert len(compared) <= 1  # no short sentence can be like a 1 MB quote
    assert searches.calls <= evidence.HINT_SEARCHES
    # an ordinary slip still gets its sentence
    assert source.nearest_sentence("Ab ab ab abb.").number == 1


def _big_pack(tmp_path: Path, support: str | None = None) -> tuple[Path, str]:
    """The bundled pack with a 1 MB passage added to its source, and a rule quoting 90 KB of it
    (a span that occurs 300,000 times inside words before it occurs as whole words)."""
    root = tmp_path / "rules"
    shutil.copytree(REPO / "rules", root)
    passage, quote = _trap(330_000, 30_000)
    text = root / "sources" / "clonazepam-monograph.txt"
    text.write_text(text.read_text() + "\n" + passage + "\n")
    rule = {
        "id": "a-long-quote",
        "status": "draft",
        "category": "class",
        "statement": "Clonazepam is quoted at length.",
        "when": "always",
        "caveats": [{"code": "beyond-evidence", "support": support or "b" + " ab" * 15_000}],
        "evidence": {"source": "clonazepam-monograph", "quote": quote, "basis": "stated"},
    }
    (root / "rules" / "9-long.yaml").write_text(yaml.safe_dump({"rules": [rule]}, width=120))
    return root, quote


def test_a_pack_quoting_a_long_span_of_a_megabyte_source_loads(tmp_path, searches):
    KnowledgeBase.load(REPO / "rules")
    bundled, searches.calls = searches.calls, 0
    root, quote = _big_pack(tmp_path)
    kb = KnowledgeBase.load(root)
    assert kb.rule("a-long-quote").evidence.quote == quote
    assert len(kb.sources["clonazepam-monograph"].text) > 1_000_000
    assert searches.calls <= bundled + 2  # one search for the quote, one for the support


def test_a_long_support_not_in_the_source_is_reported_after_bounded_work(tmp_path, searches):
    from engine.errors import PackError

    KnowledgeBase.load(REPO / "rules")
    bundled, searches.calls = searches.calls, 0
    root, _ = _big_pack(tmp_path, support="ab " * 30_000 + "zz")
    with pytest.raises(PackError) as info:
        KnowledgeBase.load(root)
    messages = [p.message for p in info.value.problems if p.severity == "error"]
    assert len(messages) == 1 and "its support is not in source" in messages[0]
    assert searches.calls <= bundled + 2 + evidence.HINT_SEARCHES


def test_remember_drops_the_oldest_first_and_never_holds_more_than_its_bound():
    from engine.bounded import remember

    cache: dict[int, object] = {}
    for i in range(1000):
        remember(cache, i, i, 64)
        assert len(cache) <= 64
    assert 999 in cache and 0 not in cache
    assert list(cache) == list(range(1000 - len(cache), 1000))  # the newest, in order
    assert len(cache) >= 64 - 64 // 16
    size = len(cache)
    remember(cache, 999, "again", 64)  # a key already held drops nothing
    assert len(cache) == size and cache[999] == "again"
