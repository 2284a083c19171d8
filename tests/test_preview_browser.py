"""The card preview at `/` in a real browser (tests/browser.py: the distribution's Chromium under
Selenium), against a real `caveat serve`: a scenario typed into the form, and each example picked,
comes back as the cards of the service's JSON (same count, summaries, indicators and order), with
their detail Markdown rendered and no marker of it left, the cards being those the engine gives
for the same scenario; text from the request is shown as written, never as HTML; the page logs no
error and asks nothing of anyone but the service. Screenshots: tests/screenshots/preview-*.png."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from browser import browser, console_errors, network, remote, shot, visit
from conftest import CASES
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait
from servers import Served, serve

from engine import evaluate

TYPED = {
    "patient": {"age": 30},
    "conditions": ["panic disorder"],
    "therapy": {"intent": "long-term", "duration_years": 5},
}
MARKERS = ("**", "\\", "&amp;", "&lt;", "&gt;")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("preview-browser")) as running:
        yield running


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    with browser() as d:
        yield d


def open_page(driver: Any, served: Served) -> None:
    visit(driver, f"{served.url}/")
    WebDriverWait(driver, 20).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#service option[value$='-order-select']")
    )


def answers(driver: Any) -> int:
    return int(driver.find_element(By.ID, "results").get_attribute("data-answers") or 0)


def wait_answer(driver: Any, before: int) -> None:
    WebDriverWait(driver, 30).until(lambda d: answers(d) > before)
    assert driver.find_element(By.ID, "results").get_attribute("data-state") == "done", (
        driver.find_element(By.ID, "status").text
    )


def shown(driver: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The request the page sent and the service's answer, as the page shows them."""
    request = json.loads(driver.find_element(By.ID, "request-json").get_attribute("textContent"))
    answer = json.loads(driver.find_element(By.ID, "response-json").get_attribute("textContent"))
    return request, answer


def check_cards_match(driver: Any, answer: dict[str, Any]) -> list[Any]:
    """The rendered cards are the answer's: count, order, summary, indicator, uuid, source."""
    rendered = driver.find_elements(By.CSS_SELECTOR, "#cards .card")
    assert len(rendered) == len(answer["cards"]) > 0
    for element, card in zip(rendered, answer["cards"], strict=True):
        assert element.find_element(By.CLASS_NAME, "card-summary").text == card["summary"]
        assert element.get_attribute("data-indicator") == card["indicator"]
        assert f"card-{card['indicator']}" in element.get_attribute("class").split()
        badge = element.find_element(By.CLASS_NAME, "badge")
        assert badge.text.lower() == card["indicator"]
        assert f"badge-{card['indicator']}" in badge.get_attribute("class").split()
        assert element.get_attribute("data-uuid") == card["uuid"]
        source = element.find_element(By.CLASS_NAME, "source-label").text
        assert source == f"Source: {card['source']['label']}"
        topic = card["source"].get("topic")
        if topic:
            assert topic["display"] in element.find_element(By.CLASS_NAME, "source-topic").text
        check_rendered(element)
    return rendered


def check_rendered(card: Any) -> None:
    """The detail is rendered: paragraphs and emphasis, and no Markdown marker left over."""
    detail = card.find_element(By.CLASS_NAME, "card-detail")
    assert detail.find_elements(By.TAG_NAME, "strong") or detail.find_elements(By.TAG_NAME, "li")
    assert detail.find_elements(By.TAG_NAME, "em")  # the disclaimer
    text = detail.get_attribute("textContent")
    for marker in MARKERS:
        assert marker not in text, (marker, text)
    for line in detail.text.splitlines():
        assert not line.startswith(("> ", "- ", "* ", "#")), line


def rules_of(answer: dict[str, Any]) -> list[str | None]:
    return [c["extension"]["org.caveat.card"].get("rule") for c in answer["cards"]]


def check_against_engine(answer: dict[str, Any], scenario: dict[str, Any]) -> None:
    """The cards are the engine's statements for the scenario, then its undecided card."""
    result = evaluate(scenario)
    undecided = bool(result.undetermined or result.not_covered or result.unrecognized)
    expected = [s.rule for s in result.statements] + ([None] if undecided else [])
    assert rules_of(answer) == expected


def ask_long_panic_therapy(driver: Any) -> tuple[Any, Any]:
    """Type panic disorder, age 30, a long-term course of 5 years, and show the cards."""
    driver.find_element(By.ID, "conditions").send_keys("panic disorder")
    driver.find_element(By.ID, "age").send_keys("30")
    Select(driver.find_element(By.ID, "intent")).select_by_value("long-term")
    driver.find_element(By.ID, "duration").send_keys("5")
    before = answers(driver)
    driver.find_element(By.ID, "submit").click()
    wait_answer(driver, before)
    return shown(driver)


def test_a_typed_scenario_shows_the_cards_of_the_service(driver: Any, served: Served) -> None:
    open_page(driver, served)
    shot(driver, "preview-empty")
    assert driver.find_elements(By.CSS_SELECTOR, "#cards .card") == []
    request, answer = ask_long_panic_therapy(driver)
    rendered = check_cards_match(driver, answer)
    shot(driver, "preview-cards", full=True)

    # a real CDS Hooks request, made of FHIR resources from the form
    assert request["hook"] == "order-select"
    assert request["prefetch"]["patient"]["birthDate"] == "1996-11-25"  # 30 on 2026-11-25
    (order,) = [e["resource"] for e in request["context"]["draftOrders"]["entry"]]
    assert request["context"]["selections"] == [f"MedicationRequest/{order['id']}"]
    assert order["courseOfTherapyType"]["coding"][0]["code"] == "continuous"
    assert order["dosageInstruction"][0]["timing"]["repeat"]["boundsDuration"]["value"] == 5
    (condition,) = [e["resource"] for e in request["prefetch"]["conditions"]["entry"]]
    assert condition["code"] == {"text": "panic disorder"}
    # the same request sent by hand gets the same cards (uuids are random per call)
    with served.client() as client:
        again = client.post("/cds-services/clonazepam-order-select", json=request).json()
    assert [(c["summary"], c["indicator"]) for c in again["cards"]] == [
        (c["summary"], c["indicator"]) for c in answer["cards"]
    ]
    # and they are the engine's for the scenario typed
    check_against_engine(answer, TYPED)
    assert rules_of(answer)[-1] == "panic-beyond-three-years"
    assert "warning" in [c.get_attribute("data-indicator") for c in rendered]
    last = rendered[-1].find_element(By.CLASS_NAME, "card-detail")
    assert last.find_elements(By.CSS_SELECTOR, "ul li strong")  # the caveats, listed
    assert last.find_elements(By.TAG_NAME, "blockquote")  # the source's words
    assert "therapy.duration_years = 5" in last.text  # an escaped _ shown as written

    assert console_errors(driver) == []
    assert remote(network(driver), allowed=(served.url,)) == []


@pytest.mark.parametrize("hook", ["order-sign", "patient-view"])
def test_each_hook_of_the_service_answers_the_same_scenario(
    driver: Any, served: Served, hook: str
) -> None:
    open_page(driver, served)
    Select(driver.find_element(By.ID, "service")).select_by_value(f"clonazepam-{hook}")
    request, answer = ask_long_panic_therapy(driver)
    assert request["hook"] == hook
    check_cards_match(driver, answer)
    check_against_engine(answer, TYPED)
    assert console_errors(driver) == []
    assert remote(network(driver), allowed=(served.url,)) == []


def _case(case_id: str) -> dict[str, Any]:
    for path in CASES.glob("*.yaml"):
        loaded = yaml.safe_load(path.read_text())
        for case in loaded if isinstance(loaded, list) else [loaded]:
            if case["id"] == case_id:
                return {k: case[k] for k in ("patient", "conditions", "medications", "therapy")
                        if k in case}  # fmt: skip
    raise LookupError(case_id)


def test_each_example_picked_shows_the_cards_of_its_case(driver: Any, served: Served) -> None:
    open_page(driver, served)
    examples = json.loads(
        driver.find_element(By.ID, "caveat-examples").get_attribute("textContent")
    )
    picker = Select(driver.find_element(By.ID, "example"))
    assert len(picker.options) == len(examples) + 1
    for i, example in enumerate(examples):
        before = answers(driver)
        picker.select_by_value(str(i))
        wait_answer(driver, before)
        _, answer = shown(driver)
        check_cards_match(driver, answer)
        check_against_engine(answer, _case(example["case"]))
        if example["case"] == "rls-line-unknown":
            card = driver.find_elements(By.CSS_SELECTOR, "#cards .card")[-1]
            assert card.get_attribute("data-kind") == "undecided"
            assert "therapy.line" in card.find_element(By.CLASS_NAME, "card-detail").text
            driver.execute_script("arguments[0].scrollIntoView()", card)
            shot(driver, "preview-example-undecided")
    assert console_errors(driver) == []
    assert remote(network(driver), allowed=(served.url,)) == []


def test_text_from_the_request_is_shown_as_written_never_as_html(
    driver: Any, served: Served
) -> None:
    open_page(driver, served)
    hostile = '<img src="/x" onerror="document.title=1"> **not bold** [a](http://example.org/)'
    driver.find_element(By.ID, "conditions").send_keys("panic disorder")
    driver.find_element(By.ID, "medications").send_keys(hostile)
    before = answers(driver)
    driver.find_element(By.ID, "submit").click()
    wait_answer(driver, before)
    cards = driver.find_element(By.ID, "cards")
    assert cards.find_elements(By.CSS_SELECTOR, "img, a, script") == []
    undecided = driver.find_elements(By.CSS_SELECTOR, "#cards .card")[-1]
    assert undecided.get_attribute("data-kind") == "undecided"
    assert hostile in undecided.find_element(By.CLASS_NAME, "card-detail").text
    assert driver.title == "Caveat: card preview"
    assert console_errors(driver) == []
    assert not [u for u in network(driver) if u.endswith("/x")]
    assert remote(network(driver), allowed=(served.url,)) == []


def test_a_form_the_service_could_not_take_is_not_sent(driver: Any, served: Served) -> None:
    open_page(driver, served)
    driver.find_element(By.ID, "age").send_keys("31.5")
    driver.find_element(By.ID, "duration").send_keys("200")
    driver.find_element(By.ID, "submit").click()
    status = driver.find_element(By.ID, "status")
    WebDriverWait(driver, 10).until(lambda d: "Duration" in status.text)
    assert "Age: a whole number of years" in status.text
    assert "error" in status.get_attribute("class").split()
    assert answers(driver) == 0  # nothing was sent
    assert not [u for u in network(driver) if "/cds-services/" in u]


def test_a_refusal_shows_what_the_service_said(driver: Any, served: Served) -> None:
    open_page(driver, served)
    # 9,000 conditions: a request over the service's 2 MiB limit, answered 413
    driver.execute_script(
        "document.getElementById('conditions').value = "
        "Array.from({length: 9000}, (_, i) => 'condition ' + i).join('\\n')"
    )
    driver.find_element(By.ID, "submit").click()
    results = driver.find_element(By.ID, "results")
    WebDriverWait(driver, 30).until(lambda d: results.get_attribute("data-state") == "refused")
    assert driver.find_elements(By.CSS_SELECTOR, "#cards .card") == []
    said = driver.find_element(By.ID, "cards").text
    assert "refused the request (413)" in said
    assert "over the limit of 2,097,152 bytes" in said
    answer = json.loads(driver.find_element(By.ID, "response-json").get_attribute("textContent"))
    assert answer["resourceType"] == "OperationOutcome"
    assert "answered 413" in driver.find_element(By.ID, "status").text
    # the browser reports the failed call itself, and nothing else
    errors = console_errors(driver)
    assert errors and all("status of 413" in e for e in errors), errors
    assert remote(network(driver), allowed=(served.url,)) == []
