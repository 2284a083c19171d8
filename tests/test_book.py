"""`caveat rules book`: the pack as one HTML page for its reviewers. The page is parsed here (the
standard library's html.parser) and held to what a reviewer relies on: a card for every rule, every
claim sentence linked to rules that exist, every sentence left out with its reason, every caveat's
words and every quote marked in the source, conditions in plain words, cases with their outcome,
nothing fetched from the network, every text escaped; and the command writes its file atomically
and refuses a broken pack with a clear error. (tests/test_book_browser.py opens it in a browser.)"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import CASES, RULES, caveat, edit
from pydantic import TypeAdapter

from engine import KnowledgeBase, load_knowledge_base
from engine.authoring import coverage
from engine.authoring.book import build_book
from engine.authoring.book_words import condition_words, scenario_words
from engine.conditions import When
from engine.evidence import normalise_space
from engine.render import DISCLAIMER

TODAY = dt.date(2026, 12, 1)
VOID = {"br", "meta", "img", "hr", "input", "link", "wbr", "col", "source"}


class Node:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node | str] = []

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def walk(self):
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.walk()

    def find(self, tag: str | None = None, cls: str | None = None) -> list[Node]:
        return [
            n
            for n in self.walk()
            if (tag is None or n.tag == tag) and (cls is None or cls in n.classes)
        ]


class Tree(HTMLParser):
    """The page as a tree of nodes (enough of a DOM for these tests)."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {}, None)
        self.at = self.root
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: v or "" for k, v in attrs}, self.at)
        self.at.children.append(node)
        if tag not in VOID:
            self.at = node

    def handle_endtag(self, tag):
        node = self.at
        while node is not self.root and node.tag != tag:
            node = node.parent
        assert node is not self.root, f"</{tag}> closes nothing"
        self.at = node.parent

    def handle_data(self, data):
        self.at.children.append(data)


def squeeze(text: str) -> str:
    return "".join(text.split())


@pytest.fixture(scope="module")
def book(kb: KnowledgeBase) -> str:
    return build_book(kb, [CASES], today=TODAY)


@pytest.fixture(scope="module")
def tree(book: str) -> Node:
    return Tree(book).root


@pytest.fixture(scope="module")
def ids(tree: Node) -> dict[str, Node]:
    found: dict[str, Node] = {}
    for node in tree.walk():
        if "id" in node.attrs:
            assert node.attrs["id"] not in found, f"duplicate id {node.attrs['id']}"
            found[node.attrs["id"]] = node
    return found


@pytest.fixture(scope="module")
def sentences(kb: KnowledgeBase):
    return coverage(kb, [], today=TODAY).sentences


def test_the_page_is_well_formed_and_complete(book: str, tree: Node):
    assert book.startswith("<!DOCTYPE html>")
    assert tree.find("html") and tree.find("head") and tree.find("body")
    for section in ("pack", "source", "rules", "caveat-codes", "vocabulary", "sign-off"):
        assert f'id="{section}"' in book


def test_every_rule_has_a_card(kb: KnowledgeBase, ids: dict[str, Node]):
    for rule in kb.rules:
        card = ids.get(f"rule-{rule.id}")
        assert card is not None, rule.id
        assert card.tag == "article" and "card" in card.classes
        text = normalise_space(card.text())
        assert rule.statement in text
        assert normalise_space(rule.evidence.quote) in text
        for use in rule.caveats:
            assert kb.caveats[use.code].meaning.strip() in text
            assert normalise_space(use.support) in text
        assert rule.status in text


def test_every_claim_sentence_links_to_existing_rules(sentences, tree: Node, ids):
    claims = [c for text in tree.find("div", "source-text") for c in text.find("span", "claim")]
    assert len(claims) == sum(bool(s.rules) for s in sentences) > 0
    by_anchor = {c.attrs["id"]: c for c in claims}
    for s in sentences:
        if not s.rules:
            continue
        claim = by_anchor[f"s-{s.source}-{s.number}"]
        targets = [a.attrs["href"] for a in claim.find("a")]
        assert targets, s.number
        for href in targets:
            assert href.startswith("#rule-") and href[1:] in ids, href
        assert [t.removeprefix("#rule-") for t in targets] == s.rules
        assert squeeze(s.text) in squeeze(claim.text())


def test_every_left_out_sentence_shows_its_reason(sentences, ids):
    left = [s for s in sentences if s.left_out and not s.rules]
    assert left
    for s in left:
        node = ids[f"s-{s.source}-{s.number}"]
        assert "left-out" in node.classes
        why = node.find(cls="why")
        assert why and normalise_space(s.left_out) in normalise_space(why[0].text())
    assert not any(s.left_out is None and not s.rules for s in sentences)  # (100% coverage)


def _marked(tree: Node, attribute: str, key: str) -> str:
    source = next(n for n in tree.walk() if n.attrs.get("id") == "source")
    return "".join(n.text() for n in source.walk() if key in n.attrs.get(attribute, "").split())


def test_every_caveat_support_is_marked_in_the_source(kb: KnowledgeBase, tree: Node):
    count = 0
    for rule in kb.rules:
        for use in rule.caveats:
            marked = _marked(tree, "data-support", f"{rule.id}/{use.code}")
            assert squeeze(marked) == squeeze(use.support), (rule.id, use.code)
            count += 1
    assert count > 20
    marks = [n for n in tree.walk() if "data-support" in n.attrs]
    assert marks and all(n.tag == "mark" and "support" in n.classes for n in marks)


def test_every_quote_is_marked_in_the_source(kb: KnowledgeBase, tree: Node):
    for rule in kb.rules:
        marked = _marked(tree, "data-quote", rule.id)
        assert squeeze(marked) == squeeze(rule.evidence.quote), rule.id


def test_the_legend_explains_the_highlights(tree: Node):
    legend = tree.find(cls="legend")[0]
    text = normalise_space(legend.text())
    for said in ("encodes", "quotes as its evidence", "behind a caveat", "left out", "number"):
        assert said in text
    classes = {c for n in legend.walk() for c in n.classes}
    assert {"claim", "quote", "support", "left-out"} <= classes


def test_nothing_is_fetched_from_the_network(book: str):
    lowered = book.lower()
    assert "<script" not in lowered and "<link" not in lowered and "<img" not in lowered
    assert not re.search(r"\bsrc\s*=", lowered)
    assert "@import" not in lowered and "url(" not in lowered and "@font-face" not in lowered
    assert not re.search(r"href\s*=\s*[\"']?\s*(https?:)?//", lowered)
    # the source's own address, as plain text
    assert "https://en.wikipedia.org/wiki/Clonazepam" in book


def test_the_top_says_what_the_pack_is(kb: KnowledgeBase, book: str, tree: Node):
    top = normalise_space(next(n for n in tree.walk() if n.attrs.get("id") == "pack").text())
    assert kb.manifest.title in top and kb.id in top and kb.version in top
    assert kb.digest in top
    assert "released" in top.lower()
    for entry in kb.manifest.changelog:
        assert entry.version in top
        for change in entry.changes:
            assert normalise_space(change) in top
    assert DISCLAIMER in top
    assert normalise_space(kb.manifest.copyright) in top
    assert "CC BY-SA 4.0" in top
    assert "last reviewed 2026-11-25" in top and "next due 2027-11-25" in top
    assert re.search(r"\d+ cases from .*: \d+ pass, 0 fail", top)
    assert "not approved" in top.lower()


def test_an_overdue_review_is_said(kb: KnowledgeBase):
    late = Tree(build_book(kb, [CASES], today=dt.date(2028, 1, 1))).root
    top = normalise_space(next(n for n in late.walk() if n.attrs.get("id") == "pack").text())
    assert "overdue" in top.lower()
    card = next(n for n in late.walk() if n.attrs.get("id") == "rule-acute-mania")
    assert "overdue" in card.text() and "review due" in card.text().lower()


def test_conditions_read_as_plain_words(kb: KnowledgeBase, ids):
    words = condition_words(kb, kb.rule("panic-beyond-three-years").when)
    assert words == (
        "a condition that is, or is a kind of, panic disorder, and therapy planned (or under "
        "way) for more than 3 years"
    )
    card = normalise_space(ids["rule-panic-beyond-three-years"].text())
    assert words in card
    assert "when:" not in card and "duration_years" not in card
    said = condition_words(kb, kb.rule("ncse-add-phenytoin").when)
    assert "no current medication that is, or is a kind of, phenytoin" in said
    said = condition_words(kb, kb.rule("other-anxiety-disorders-off-label").when)
    assert said.endswith("anxiety disorder, other than panic disorder (or a kind of it)")
    assert "before the third line" in condition_words(kb, kb.rule("rls-before-third-line").when)
    assert condition_words(kb, "always").startswith("always")


@pytest.mark.parametrize(
    "when, words",
    [
        ({"age": {"gte": 65}}, "a patient aged 65 or over"),
        ({"not": {"age": {"lt": 18}}}, "a patient aged 18 or over"),
        ({"duration_years": {"lte": 1}}, "therapy planned (or under way) for at most 1 year"),
        ({"line": {"gte": 2}}, "therapy considered at the second line of treatment or later"),
        ({"dose": ["standard", "high"]}, "therapy at a standard or high dose"),
        ({"response": "none"}, "therapy with no response so far"),
        ({"not": {"condition": "bruxism"}}, "no condition that is, or is a kind of, bruxism"),
        (
            {"any": [{"condition": "bruxism"}, {"intent": "acute"}]},
            "either a condition that is, or is a kind of, bruxism, or therapy intended as acute "
            "treatment",
        ),
        (
            {"not": {"all": [{"medication": "phenytoin"}, {"intent": "acute"}]}},
            "either no current medication that is, or is a kind of, phenytoin, or therapy not "
            "intended as acute treatment",
        ),
    ],
)
def test_condition_words_of_each_test(kb: KnowledgeBase, when, words):
    assert condition_words(kb, TypeAdapter(When).validate_python(when)) == words


def test_cases_are_on_the_cards_with_their_outcome(ids):
    card = ids["rule-panic-beyond-three-years"]
    applies = card.find("table", "cases")[0]
    row = next(r for r in applies.find("tr") if "panic-five-years" in r.text())
    assert row.find(cls="badge")[0].text() == "pass"
    assert "age 50" in row.text() and "panic disorder" in row.text()
    assert "with caveats beyond-evidence, not-placebo-controlled" in normalise_space(row.text())
    other = ids["rule-panic-long-term-up-to-three-years"]
    assert "must not apply" in other.text()
    shown = [r for r in other.find("tr") if "panic-five-years" in r.text()]
    named = [c for c in other.find(cls="case-chip") if "panic-five-years" in c.text()]
    assert shown or named  # in full, or named among the other passing cases
    if shown:
        assert "does not apply" in shown[0].text()
    else:
        assert "pass" in named[0].classes
    background = normalise_space(ids["rule-class-benzodiazepine"].text())
    assert "background statement" in background


def test_a_card_shows_every_case_that_names_its_rule(kb: KnowledgeBase, ids):
    """Some in full and the rest by name, each with its outcome: none is left out."""
    from engine.authoring.book_cases import run_library

    run = run_library(kb, [CASES], include_draft=False)
    for rule in kb.rules:
        card = ids[f"rule-{rule.id}"]
        rows = [r for t in card.find("table", "cases") for r in t.find("tbody")[0].find("tr")]
        chips = card.find(cls="case-chip")
        assert len(rows) + len(chips) == len(run.uses[rule.id]), rule.id
        assert all(r.find(cls="badge")[0].text() == "pass" for r in rows)
        assert all("pass" in c.classes for c in chips)


def test_a_failing_case_shows_as_failing(kb: KnowledgeBase, tmp_path: Path):
    (tmp_path / "wrong.yaml").write_text(
        "id: wrong-expectation\n"
        "description: expects the acute-mania statement for panic disorder\n"
        "conditions: [panic disorder]\n"
        "expect: {applies: [acute-mania], not_applies: [indication-panic-disorder]}\n"
    )
    root = Tree(build_book(kb, [tmp_path], today=TODAY)).root
    card = next(n for n in root.walk() if n.attrs.get("id") == "rule-acute-mania")
    row = next(r for r in card.find("tr") if "wrong-expectation" in r.text())
    assert row.find(cls="badge")[0].text() == "fail"
    assert "expected acute-mania to apply" in row.text()
    panic = next(n for n in root.walk() if n.attrs.get("id") == "rule-indication-panic-disorder")
    row = next(r for r in panic.find("tr") if "wrong-expectation" in r.text())
    assert row.find(cls="badge")[0].text() == "fail"
    top = normalise_space(next(n for n in root.walk() if n.attrs.get("id") == "pack").text())
    assert "1 cases from" in top and "1 fail" in top


def test_the_vocabulary_gives_hierarchy_and_codes(kb: KnowledgeBase, ids):
    epilepsy = ids["concept-epilepsy"]
    text = normalise_space(epilepsy.text())
    assert "seizure disorder" in text  # its parent
    assert "absence seizures" in text  # a child
    assert "Epilepsy and recurrent seizures" in text  # ICD-10-CM's description of G40
    assert "epileptic disorder" in text  # a synonym
    links = {a.attrs.get("href") for a in epilepsy.find("a")}
    assert "#concept-seizure-disorder" in links and "#concept-absence-seizures" in links
    clonazepam = normalise_space(ids["concept-clonazepam"].text())
    assert "clonazepam 0.5 MG Oral Tablet" in clonazepam  # a code list's display
    assert "not verified" in clonazepam
    for concept in kb.vocabulary.concepts:
        assert f"concept-{concept}" in ids
        for href in (a.attrs.get("href", "") for a in ids[f"concept-{concept}"].find("a")):
            assert href[1:] in ids, href


def test_every_internal_link_lands(tree: Node, ids):
    hrefs = [a.attrs["href"] for a in tree.find("a") if "href" in a.attrs]
    assert hrefs
    for href in hrefs:
        assert href.startswith("#") and href[1:] in ids, href


def test_the_print_stylesheet(book: str):
    css = book[book.index("<style>") : book.index("</style>")]
    printed = css[css.index("@media print") :]
    assert "break-inside: avoid" in printed and ".card" in printed
    assert re.search(r"\.bar[^{]*\{\s*display:\s*none", printed)
    assert "print-color-adjust: exact" in printed
    assert "@page" in css
    assert "sign-off" in book and "Signature" in book


def test_draft_and_retired_rules_and_a_failing_pack(tmp_path: Path):
    pack = tmp_path / "rules"
    shutil.copytree(RULES, pack)
    edit(
        pack / "rules" / "4-mood.yaml",
        "  - id: acute-mania\n    status: active",
        "  - id: acute-mania\n    status: retired",
    )
    edit(
        pack / "rules" / "3-movement-and-sleep.yaml",
        "  - id: indication-akathisia\n    status: active",
        "  - id: indication-akathisia\n    status: draft",
    )
    root = Tree(build_book(KnowledgeBase.load(pack), [CASES], today=TODAY)).root
    ids = {n.attrs["id"]: n for n in root.walk() if "id" in n.attrs}
    retired = ids["rule-acute-mania"]
    assert "retired" in retired.classes and "never evaluated" in retired.text()
    sentence = ids["s-clonazepam-monograph-17"]  # encoded by the retired rule only
    assert "unencoded" in sentence.classes and "Not encoded" in sentence.text()
    assert not any("acute-mania" in n.attrs.get("data-quote", "") for n in root.walk())
    draft = [a for a in ids["s-clonazepam-monograph-1"].find("a") if "akathisia" in a.attrs["href"]]
    assert draft and "draft" in draft[0].classes
    assert "draft" in ids["rule-indication-akathisia"].classes
    top = normalise_space(ids["pack"].text())
    assert "fails" in top and "not released" in top  # cases name a retired rule; the pack changed
    legend = normalise_space(root.find(cls="legend")[0].text())
    assert "neither encoded nor left out" in legend


def test_every_text_is_escaped(tmp_path: Path):
    pack = tmp_path / "rules"
    shutil.copytree(RULES, pack)
    edit(
        pack / "rules" / "2-anxiety.yaml",
        "statement: Clonazepam is used to treat panic disorder.",
        'statement: "Clonazepam is used to treat panic disorder <script>alert(1)</script>."',
    )
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "c.yaml").write_text(
        "id: '<img src=x onerror=alert(2)>'\ndescription: '<b>bold</b> & more'\n"
        "conditions: [panic disorder]\nexpect: {applies: [indication-panic-disorder]}\n"
    )
    page = build_book(KnowledgeBase.load(pack), [cases], today=TODAY)
    assert "<script" not in page and "<img" not in page and "<b>bold" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert (
        "&lt;img src=x onerror=alert(2)&gt;" in page
        and "&lt;b&gt;bold&lt;/b&gt; &amp; more" in page
    )


def test_scenario_words_take_any_input():
    assert scenario_words(
        {"patient": {"age": 9}, "conditions": ["x", {"code": "G40", "system": "ICD-10-CM"}]}
    ) == ("age 9; conditions: x, G40 (ICD-10-CM)")
    assert scenario_words({"conditions": 7, "extra": [1]}) == "conditions: 7; extra: [1]"
    assert scenario_words({}) == "nothing given"


# -- the command ------------------------------------------------------------------------------


def _temps(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.endswith(".tmp")]


def test_the_command_writes_the_book_atomically(tmp_path: Path):
    out = tmp_path / "pack.html"
    out.write_text("the previous book")
    before = os.stat(out).st_ino
    proc = caveat("rules", "book", "--out", str(out), "--today", "2026-12-01")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""  # the page went to the file, the note to stderr
    assert "wrote" in proc.stderr
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert os.stat(out).st_ino != before  # a new file renamed over the old, not rewritten
    assert _temps(tmp_path) == []
    for rule in load_knowledge_base().rules:
        assert f'id="rule-{rule.id}"' in page


def test_the_command_writes_to_standard_output(tmp_path: Path):
    proc = caveat("rules", "book", "--cases", str(CASES / "panic.yaml"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("<!DOCTYPE html>") and "</html>" in proc.stdout


def test_a_broken_pack_is_a_clear_error_and_leaves_out_alone(tmp_path: Path):
    pack = tmp_path / "rules"
    shutil.copytree(RULES, pack)
    edit(
        pack / "rules" / "2-anxiety.yaml",
        "when: {condition: panic-disorder}",
        "when: {condition: panic-disordr}",
    )
    out = tmp_path / "pack.html"
    out.write_text("the previous book")
    proc = caveat("rules", "book", "--pack", str(pack), "--out", str(out))
    assert proc.returncode == 2
    assert "the knowledge pack cannot be loaded" in proc.stderr
    assert "2-anxiety.yaml:" in proc.stderr and "panic-disordr" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert out.read_text() == "the previous book" and _temps(tmp_path) == []


def test_out_a_directory_is_refused_before_any_work(tmp_path: Path):
    proc = caveat("rules", "book", "--out", str(tmp_path))
    assert proc.returncode == 2
    assert "it is a directory" in proc.stderr
    proc = caveat("rules", "book", "--out", str(tmp_path / "no" / "such.html"))
    assert proc.returncode == 2 and "no such directory" in proc.stderr
