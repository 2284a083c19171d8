"""The batch report as a reviewer sees it, in a real browser (tests/browser.py: the distribution's
Chromium under Selenium), over the whole case library."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import browser, console_errors, network, remote, shot, visit
from conftest import CASES

from engine import load_knowledge_base
from engine.batch import evaluate_many
from engine.casefiles import read_cases
from engine.cli import main


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert main(["batch", str(CASES), "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def page(report: Path):
    with browser() as driver:
        visit(driver, report.as_uri())
        yield driver


def test_it_loads_nothing_and_logs_no_error(page):
    assert page.execute_script("return innerWidth") <= 1280 <= page.get_window_size()["width"]
    assert console_errors(page) == []
    assert remote(network(page)) == []
    shot(page, "batch-report-top")


def test_the_rule_headers_stay_in_view_after_scrolling_2000_px(page):
    page.execute_script("window.scrollTo(0, 0)")
    top = page.execute_script(
        "return document.querySelector('table.matrix').getBoundingClientRect().top + scrollY"
    )
    page.execute_script(f"window.scrollTo(0, {top + 2000})")
    first = page.execute_script(
        "const th = document.querySelectorAll('table.matrix thead th')[1];"
        "const r = th.getBoundingClientRect();"
        "return [r.top, r.bottom, r.left, document.elementFromPoint(r.left + 5, r.top + 5)"
        " === th || th.contains(document.elementFromPoint(r.left + 5, r.top + 5))]"
    )
    assert 0 <= first[0] < 5 and first[3], first  # at the top of the window, and not covered
    case = page.execute_script(
        "return document.querySelector('tr.case-row td.case').getBoundingClientRect().left"
    )
    assert case >= 0
    shot(page, "batch-report-scrolled")
    page.execute_script(f"window.scrollTo(3000, {top + 2000})")  # and sideways: the case column
    left = page.execute_script(
        "const rows = [...document.querySelectorAll('tr.case-row td.case')];"
        "const seen = rows.find(td => { const r = td.getBoundingClientRect();"
        " return r.bottom > 200 && r.top < innerHeight; });"
        "return seen.getBoundingClientRect().left"
    )
    assert 0 <= left < 5
    shot(page, "batch-report-sideways")
    page.execute_script("window.scrollTo(0, 0)")


def test_every_case_and_every_rule_given_is_there(page):
    kb = load_knowledge_base()
    cases = page.execute_script(
        "return [...document.querySelectorAll('tr.case-row')].map(r => r.id)"
    )
    assert sorted(cases) == sorted(f"case-{e.name}" for e in read_cases([CASES]))
    heads = page.execute_script(
        "return [...document.querySelectorAll('table.matrix thead th small')]"
        ".map(s => s.textContent)"
    )
    outcomes = [o for o in evaluate_many(read_cases([CASES]), knowledge_base=kb) if o.result]
    given = {s.rule for o in outcomes for s in o.result.statements}
    given |= {u.rule for o in outcomes for u in o.result.undetermined}
    assert heads == [r.id for r in kb.rules if r.id in given]  # every rule given, in pack order


def test_a_row_opens_to_its_full_result(page):
    row = page.find_element("css selector", "tr.case-row details summary")
    page.execute_script("arguments[0].scrollIntoView({block: 'center'})", row)
    row.click()
    details = row.find_element("xpath", "..")
    assert details.get_attribute("open") is not None
    text = details.text
    assert "Statements" in text and "“" in text
    shot(page, "batch-report-details")


def test_the_filters_hide_and_show_rows(page):
    page.execute_script("window.scrollTo(0, 0)")
    total = len(page.find_elements("css selector", "tr.case-row"))
    shown = page.find_element("id", "shown").text
    assert shown == f"{total:,} of {total:,} cases shown"
    rejected = page.find_element("css selector", "input[name=status][value=rejected]")
    rejected.click()
    hidden = page.execute_script("return document.querySelectorAll('tr.case-row[hidden]').length")
    assert 0 < hidden < total
    rejected.click()
    select = page.find_element("id", "caveat")
    option = select.find_elements("css selector", "option")[1]
    option.click()
    visible = page.execute_script(
        "return [...document.querySelectorAll('tr.case-row:not([hidden])')]"
        ".map(r => r.dataset.caveats)"
    )
    code = option.get_attribute("value")
    assert visible and all(code in v.split() for v in visible)
    shot(page, "batch-report-filtered")
