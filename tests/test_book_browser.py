"""The pack book in a real browser (tests/browser.py: the distribution's Chromium under Selenium),
at 1,280 x 800, as a reviewer sees it: every rule card is there and in view when scrolled to (not
under the sticky bar), every highlighted source sentence links to a card that exists, clicking a
sentence's link brings its card into view, the page logs no error and loads nothing from the
network, and printed it drops the sticky bar and keeps cards whole. Screenshots:
tests/screenshots/book-*.png."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import HEIGHT, browser, console_errors, network, remote, shot, visit
from conftest import CASES
from selenium.webdriver.common.by import By

from engine import KnowledgeBase
from engine.authoring.book import build_book

# Where an element's first box (its first line, for a sentence) is, and whether the page shows
# the element just inside that box's top-left corner.
PLACE = """
const el = arguments[0], r = el.getClientRects()[0];
const seen = document.elementFromPoint(
  r.left + Math.min(24, r.width / 2), Math.max(r.top, 0) + Math.min(24, r.height / 2));
return {top: r.top, bottom: r.bottom, bar: document.querySelector('.bar').offsetHeight,
        inside: seen !== null && el.contains(seen), height: window.innerHeight};
"""


@pytest.fixture(scope="module")
def page(kb: KnowledgeBase, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("book") / "pack.html"
    path.write_text(build_book(kb, [CASES], today=dt.date(2026, 12, 1)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def driver(page: Path) -> Iterator[Any]:
    with browser() as d:
        visit(d, page.as_uri())
        yield d


def in_view(driver: Any, element: Any) -> dict[str, Any]:
    place = driver.execute_script(PLACE, element)
    assert place["inside"], (element.get_attribute("id"), place)  # not under the sticky bar
    assert place["bar"] - 1 <= place["top"] < place["height"] - 40, place
    return place


def test_nothing_loaded_and_no_console_error(driver: Any, page: Path):
    assert driver.title.startswith("Clonazepam monograph: the pack book")
    assert console_errors(driver) == []
    urls = network(driver)
    assert page.as_uri() in urls
    assert remote(urls) == []
    assert driver.execute_script("return window.innerWidth") == 1280
    shot(driver, "book-top")
    shot(driver, "book-full", full=True)


def test_every_rule_card_is_there_and_visible(driver: Any, kb: KnowledgeBase):
    cards = driver.find_elements(By.CSS_SELECTOR, "article.card")
    assert {c.get_attribute("id") for c in cards} == {f"rule-{r.id}" for r in kb.rules}
    for rule in kb.rules:
        card = driver.find_element(By.ID, f"rule-{rule.id}")
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", card)
        assert card.is_displayed()
        in_view(driver, card)
        statement = card.find_element(By.TAG_NAME, "h4")
        assert statement.is_displayed() and statement.text == rule.statement


def test_every_highlighted_sentence_links_to_a_card(driver: Any):
    links = driver.find_elements(By.CSS_SELECTOR, ".source-text .s.claim a.ref")
    assert len(links) >= 30
    for link in links:
        target = link.get_attribute("href").rsplit("#", 1)[1]
        assert target.startswith("rule-")
        found = driver.execute_script(
            "const t = document.getElementById(arguments[0]);"
            "return t !== null && t.matches('article.card');",
            target,
        )
        assert found, target


def test_clicking_a_sentence_link_brings_its_card_into_view(driver: Any):
    links = driver.find_elements(By.CSS_SELECTOR, ".source-text .s.claim a.ref")
    for link in links:
        target = link.get_attribute("href").rsplit("#", 1)[1]
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", link)
        link.click()
        card = driver.find_element(By.ID, target)
        assert driver.execute_script("return location.hash") == f"#{target}"
        in_view(driver, card)
        assert card.find_element(By.TAG_NAME, "h4").is_displayed()
    # the card a reviewer lands on from sentence 16 of the source
    link = driver.find_element(
        By.CSS_SELECTOR, ".source-text a.ref[href='#rule-panic-beyond-three-years']"
    )
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", link)
    link.click()
    card = driver.find_element(By.ID, "rule-panic-beyond-three-years")
    assert in_view(driver, card)["top"] < HEIGHT / 4
    shot(driver, "book-rule-card")
    # and back from the card to its sentence
    card.find_element(By.CSS_SELECTOR, ".back a").click()
    sentence = driver.find_element(By.ID, "s-clonazepam-monograph-16")
    in_view(driver, sentence)
    shot(driver, "book-source")


def test_the_caveat_words_are_marked_where_a_reviewer_reads(driver: Any):
    marks = driver.find_elements(By.CSS_SELECTOR, ".source-text mark.support")
    assert len(marks) > 10
    colour = marks[0].value_of_css_property("background-color")
    assert colour not in ("rgba(0, 0, 0, 0)", "transparent")
    left = driver.find_elements(By.CSS_SELECTOR, ".source-text .s.left-out .why")
    assert left and all(w.is_displayed() and w.text.startswith("Left out:") for w in left)


def test_printed_the_bar_goes_and_cards_stay_whole(driver: Any):
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        bar = driver.find_element(By.CSS_SELECTOR, ".bar")
        assert bar.value_of_css_property("display") == "none"
        card = driver.find_element(By.CSS_SELECTOR, "article.card")
        assert card.value_of_css_property("break-inside") == "avoid"
        sticky = driver.execute_script(
            "return [...document.querySelectorAll('body *')]"
            ".filter(e => getComputedStyle(e).position === 'sticky').length"
        )
        assert sticky == 0
        driver.execute_script("window.scrollTo(0, 0)")
        shot(driver, "book-print-top")
    finally:
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
