"""The CDS Hooks 2.0 service over HTTP: `caveat serve` runs in a process of its own (one per
module, plus one with a short fetch timeout), the hook requests are the files of
fixtures/fhir/requests, and a client's FHIR server is a small HTTP server on loopback. Every
answer is checked against the spec by tests/cdshooks.py and against the engine's own result for
the same patient."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import json
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cdshooks import check_cards, check_discovery
from conftest import FIXTURES, caveat
from servers import Seen, Served, free_port, serve, small_server

from engine import evaluate, load_knowledge_base
from engine.service.cards import QUALIFYING, read_card_uuid
from engine.service.hooks import PREFETCH
from engine.service.protocol import FeedbackItem

REQUESTS = FIXTURES / "fhir" / "requests"
PACK = "clonazepam"
HOOKS = ("order-select", "order-sign", "patient-view")
TOKEN = "tok-3f9c1e0b7d"  # the fake fhirAuthorization token; must never be echoed
AUTH = {
    "access_token": TOKEN,
    "token_type": "Bearer",
    "expires_in": 300,
    "scope": "user/Patient.read user/Condition.read user/MedicationRequest.read",
    "subject": "caveat-cds",
}
ICD, SNOMED = "ICD-10-CM", "SNOMED-CT"
RLS = {"code": "G25.81", "system": ICD}
PANIC = {"code": "371631005", "system": SNOMED}


def load(name: str) -> dict[str, Any]:
    return json.loads((REQUESTS / f"{name}.json").read_text())


def url_of(body: dict[str, Any]) -> str:
    return f"/cds-services/{PACK}-{body['hook']}"


def rules_of(cards: list[dict[str, Any]]) -> list[str]:
    """Each card's rule id, read from its uuid (the info card is '(info)')."""
    kb = load_knowledge_base()
    out = []
    for card in cards:
        kind, rule = read_card_uuid(card["uuid"], kb)
        assert kind in ("rule", "info"), f"{card['uuid']} was not issued by this pack"
        ext = card["extension"]["org.caveat.card"]
        assert ext.get("rule") == rule, f"the uuid says {rule}, the extension {ext}"
        out.append(rule or "(info)")
    return out


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def contains_words(haystack: str, needle: str) -> bool:
    """Whether the words of `needle` occur in a row in `haystack` (markdown escapes, quotes and
    line breaks differ; the words do not)."""
    hay, want = " ".join(words(haystack)), " ".join(words(needle))
    return bool(want) and f" {want} " in f" {hay} "


def outcome_paths(response: httpx.Response, status: int) -> list[list[str]]:
    """The expressions of an OperationOutcome answered with `status`, after checking its shape."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json")
    data = response.json()
    assert data["resourceType"] == "OperationOutcome"
    assert data["issue"], "an OperationOutcome with no issue"
    for issue in data["issue"]:
        assert issue["severity"] in ("error", "fatal")
        assert isinstance(issue["code"], str) and issue["code"]
        assert isinstance(issue["diagnostics"], str) and issue["diagnostics"]
        assert "Traceback" not in issue["diagnostics"]
    return [issue.get("expression", []) for issue in data["issue"]]


# --- the servers -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("serve")) as s:
        yield s


@pytest.fixture(scope="module")
def client(served: Served) -> Iterator[httpx.Client]:
    with served.client() as c:
        yield c


def post(client: httpx.Client, body: Any, path: str | None = None) -> httpx.Response:
    return client.post(path or url_of(body), json=body)


def cards_of(client: httpx.Client, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = post(client, body)
    assert response.status_code == 200, response.text[:1000]
    return check_cards(response.json())


# --- discovery -------------------------------------------------------------------------------


def test_discovery_lists_one_service_per_hook(client: httpx.Client) -> None:
    response = client.get("/cds-services")
    assert response.status_code == 200
    services = check_discovery(response.json())
    assert sorted(s["hook"] for s in services) == sorted(HOOKS)
    assert {s["id"] for s in services} == {f"{PACK}-{h}" for h in HOOKS}
    for service in services:
        assert service["prefetch"] == PREFETCH
        assert set(service["prefetch"]) == {
            "patient",
            "conditions",
            "medicationRequests",
            "medicationStatements",
        }
        for template in service["prefetch"].values():
            assert "{{context.patientId}}" in template
            assert re.findall(r"\{\{([^}]*)\}\}", template) == ["context.patientId"]
        assert "not medical advice" in service["description"]


# --- the hooks, with the fixtures ------------------------------------------------------------

# fixture -> (the scenario the engine should be given for it, rules expected among the cards,
# rules whose card is a warning; every other card is info)
LONG_PANIC = {"intent": "long-term", "duration_years": 90 * 13 / 365.25}
CASES: dict[str, tuple[dict[str, Any], set[str], set[str]]] = {
    "order-select-absence-child": (
        {"patient": {"age": 8}, "conditions": [{"code": "G40.A09", "system": ICD}]},
        {"epilepsy-children", "seizure-types", "indication-seizures"},
        set(),
    ),
    "order-sign-absence-child": (
        {"patient": {"age": 8}, "conditions": [{"code": "G40.A09", "system": ICD}]},
        {"epilepsy-children", "seizure-types"},
        set(),
    ),
    "order-select-panic-beyond-three-years": (
        {"patient": {"age": 47}, "conditions": [PANIC], "therapy": LONG_PANIC},
        {"panic-beyond-three-years", "indication-panic-disorder"},
        {"panic-beyond-three-years"},
    ),
    "order-sign-panic-beyond-three-years": (
        {"patient": {"age": 47}, "conditions": [PANIC], "therapy": LONG_PANIC},
        {"panic-beyond-three-years"},
        {"panic-beyond-three-years"},
    ),
    "order-sign-restless-legs": (
        {"patient": {"age": 65}, "conditions": [RLS]},
        {"rls-third-line"},
        {"rls-third-line"},
    ),
    "order-select-restless-legs": (
        {"patient": {"age": 65}, "conditions": [RLS]},
        {"rls-third-line"},
        {"rls-third-line"},
    ),
    "patient-view-on-clonazepam": (
        {"patient": {"age": 36}, "conditions": [PANIC]},
        {"indication-panic-disorder", "panic-with-or-without-agoraphobia"},
        set(),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hook_answers_with_the_cards_the_engine_gives(client: httpx.Client, name: str) -> None:
    scenario, expected, warnings = CASES[name]
    kb = load_knowledge_base()
    cards = cards_of(client, load(name))
    rules = rules_of(cards)
    result = evaluate(scenario)
    # one card per statement, in the result's order, then the info card when something is open
    assert [r for r in rules if r != "(info)"] == result.rules()
    assert expected <= set(rules)
    open_items = result.undetermined or result.not_covered or result.unrecognized
    assert rules.count("(info)") == (1 if open_items else 0)
    if open_items:
        assert rules[-1] == "(info)"
    for card, rule in zip(cards, rules, strict=True):
        assert len(card["summary"]) < 140
        assert card["source"]["extension"]["org.caveat.pack"]["digest"] == kb.digest
        if rule == "(info)":
            limited = any(c.code not in QUALIFYING for u in result.undetermined for c in u.caveats)
            assert card["indicator"] == ("warning" if limited else "info")
            assert "not decided for this patient" in card["summary"]
            for u in result.undetermined:
                assert contains_words(card["detail"], u.text), u.text
            continue
        statement = result.statement(rule)
        assert statement is not None
        want = "warning" if rule in warnings else "info"
        assert card["indicator"] == want, (rule, card["indicator"])
        # the pack's verbatim quote, the statement and each caveat's source words are in detail
        assert contains_words(card["detail"], kb.rule(rule).evidence.quote), rule
        assert contains_words(card["detail"], statement.text), rule
        for cav in statement.caveats:
            assert contains_words(card["detail"], cav.support), (rule, cav.code)
        assert "not medical advice" in card["detail"]
        # the summary is the statement, or, when it is too long, its caveats' labels and the
        # statement cut at a word
        shown = card["summary"].removesuffix("…")
        labels = [c.label for c in statement.caveats if c.code not in QUALIFYING]
        labels += [c.label for c in statement.caveats if c.code in QUALIFYING]
        head = "; ".join(labels)
        if labels and card["summary"].endswith("…"):
            assert shown.startswith(head[:1].upper() + head[1:] + ": "), shown
            shown = shown[len(head) + 2 :]
        assert " ".join(statement.text.split()).startswith(shown)
        assert card["summary"].endswith("…") == (len(" ".join(statement.text.split())) >= 140)
        assert card["source"]["topic"]["code"] == kb.rule(rule).category
        assert len(card["overrideReasons"]) >= 2


def test_warning_cards_are_those_with_a_limiting_caveat(client: httpx.Client) -> None:
    kb = load_knowledge_base()
    seen = set()
    for name in CASES:
        for card, rule in zip(cards := cards_of(client, load(name)), rules_of(cards), strict=True):
            if rule == "(info)":
                continue
            codes = {c.code for c in kb.rule(rule).caveats}
            assert card["indicator"] == ("warning" if codes - QUALIFYING else "info"), rule
            seen.add(card["indicator"])
    assert seen == {"info", "warning"}


def test_card_uuids_are_distinct_per_card_and_per_call(client: httpx.Client) -> None:
    body = load("order-select-absence-child")
    first, second = cards_of(client, body), cards_of(client, body)
    assert len(first) >= 5
    assert rules_of(first) == rules_of(second)
    uuids = [c["uuid"] for c in first + second]
    assert len(set(uuids)) == len(uuids)
    assert all(uuid.UUID(u).version == 8 for u in uuids)


def test_the_panic_order_beyond_three_years_is_a_warning(client: httpx.Client) -> None:
    cards = cards_of(client, load("order-sign-panic-beyond-three-years"))
    rules = rules_of(cards)
    assert "panic-long-term-up-to-three-years" not in rules  # 3.2 years of supply
    card = cards[rules.index("panic-beyond-three-years")]
    assert card["indicator"] == "warning"
    assert "three years" in card["summary"]
    assert contains_words(card["detail"], "these trials were not placebo-controlled")


def test_unrecognised_conditions_and_medications_are_counted(client: httpx.Client) -> None:
    cards = cards_of(client, load("order-sign-unrecognised"))
    assert rules_of(cards) == ["(info)"]
    card = cards[0]
    assert card["indicator"] == "info"
    assert "4 not recognised" in card["summary"]  # 2 conditions, 2 medications
    assert "2 condition(s) the pack does not recognise" in card["detail"]
    # conditions are counted, not named; the medications are named
    assert "ingivitis" not in card["detail"] and "ankle" not in card["detail"]
    assert "999999999" in card["detail"]
    assert "herbal tonic" in card["detail"]


def test_valid_codes_the_pack_does_not_cover_are_listed(client: httpx.Client) -> None:
    body = load("order-sign-unrecognised")
    entries = body["prefetch"]["conditions"]["entry"]
    for entry, code in zip(entries, ("K05.10", "S93.401A"), strict=True):
        entry["resource"]["code"]["coding"] = [
            {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": code}
        ]
    [card] = cards_of(client, body)
    assert "2 not covered" in card["summary"]
    assert "K05.10" in card["detail"] and "S93.401A" in card["detail"]


def test_past_the_limit_medications_are_counted_as_medications(client: httpx.Client) -> None:
    body = load("order-sign-unrecognised")
    template = body["prefetch"]["medicationRequests"]["entry"][0]
    for i in range(120):
        entry = copy.deepcopy(template)
        entry["resource"]["id"] = f"extra-{i}"
        entry["resource"]["medicationCodeableConcept"] = {"text": f"unlisted product {i}"}
        body["prefetch"]["medicationRequests"]["entry"].append(entry)
    [card] = cards_of(client, body)
    # 2 conditions + 122 medications (100 in the scenario, 22 past its limit)
    assert "124 not recognised" in card["summary"]
    assert "- 2 condition(s) the pack does not recognise" in card["detail"]
    assert "22 more medications" in card["detail"]


def test_a_draft_order_without_an_id_is_answered(client: httpx.Client) -> None:
    body = load("order-sign-restless-legs")
    del body["context"]["draftOrders"]["entry"][0]["resource"]["id"]
    assert "rls-third-line" in rules_of(cards_of(client, body))


def test_a_prefetch_key_the_client_failed_to_fetch_is_not_no_data(client: httpx.Client) -> None:
    failed = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "timeout", "diagnostics": "search timed out"}],
    }
    body = load("order-sign-restless-legs")
    body["prefetch"]["conditions"] = failed
    assert outcome_paths(post(client, body), 412) == [["prefetch.conditions"]]
    # with a FHIR server to read it from, it is read there
    body, data = _fhir_body("order-sign-restless-legs", "p1")
    body["prefetch"] = {**data, "conditions": failed}
    with small_server(_routes("", "p1", data)) as fhir:
        body["fhirServer"] = fhir.url
        cards = cards_of(client, body)
        assert [s.path for s in fhir.seen] == [
            "/Condition?patient=p1&clinical-status=active,recurrence,relapse"
        ]
    assert "rls-third-line" in rules_of(cards)


@pytest.mark.parametrize("name", ["order-select-other-drug", "order-sign-other-drug"])
def test_an_order_for_another_drug_gets_no_cards(client: httpx.Client, name: str) -> None:
    response = post(client, load(name))
    assert response.status_code == 200
    assert response.json() == {"cards": []}


def test_order_select_answers_only_for_the_selected_order(client: httpx.Client) -> None:
    body = load("order-select-restless-legs")
    body["context"]["selections"] = ["MedicationRequest/some-other-draft"]
    assert post(client, body).json() == {"cards": []}


def test_patient_view_without_clonazepam_gets_no_cards(client: httpx.Client) -> None:
    body = load("patient-view-on-clonazepam")
    order = body["prefetch"]["medicationRequests"]["entry"][0]["resource"]
    order["medicationCodeableConcept"] = {
        "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "36437"}]
    }
    assert post(client, body).json() == {"cards": []}
    order["status"] = "stopped"  # and a stopped clonazepam order is not an active one
    order["medicationCodeableConcept"] = load("patient-view-on-clonazepam")["prefetch"][
        "medicationRequests"
    ]["entry"][0]["resource"]["medicationCodeableConcept"]
    assert post(client, body).json() == {"cards": []}


def test_null_prefetch_keys_are_no_data_not_an_error(client: httpx.Client) -> None:
    body = load("order-sign-null-prefetch")
    assert all(v is None for v in body["prefetch"].values())
    response = post(client, body)
    assert response.status_code == 200, response.text
    assert rules_of(check_cards(response.json())) == []  # no condition: nothing applies
    # a null patient beside conditions that are there: the conditions still count
    body = load("order-sign-restless-legs")
    body["prefetch"]["patient"] = None
    body["prefetch"]["medicationStatements"] = None
    assert "rls-third-line" in rules_of(cards_of(client, body))


# --- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "missing",
    [("patient",), ("conditions", "medicationStatements"), tuple(PREFETCH)],
    ids=["one", "two", "all"],
)
def test_a_missing_prefetch_key_without_fhir_server_is_412(
    client: httpx.Client, missing: tuple[str, ...]
) -> None:
    body = load("order-sign-restless-legs")
    for key in missing:
        del body["prefetch"][key]
    paths = outcome_paths(post(client, body), 412)
    assert sorted(paths) == sorted([f"prefetch.{key}"] for key in missing)
    text = post(client, body).text
    for key in missing:
        assert PREFETCH[key] in text  # the template it would have needed
    if len(missing) == len(PREFETCH):
        del body["prefetch"]  # no prefetch at all
        assert len(outcome_paths(post(client, body), 412)) == len(PREFETCH)


def _drop(*keys: str) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        target = body
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]

    return change


def _set(value: Any, *keys: str) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        target = body
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return change


MALFORMED: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "no hook": (_drop("hook"), "hook"),
    "no hookInstance": (_drop("hookInstance"), "hookInstance"),
    "no context": (_drop("context"), "context"),
    "context not an object": (_set(["x"], "context"), "context"),
    "wrong hook": (_set("order-sign", "hook"), "hook"),
    "no patientId": (_drop("context", "patientId"), "context.patientId"),
    "patientId not a text": (_set(42, "context", "patientId"), "context.patientId"),
    "no draftOrders": (_drop("context", "draftOrders"), "context.draftOrders"),
    "draftOrders not a Bundle": (
        _set({"resourceType": "Patient"}, "context", "draftOrders"),
        "context.draftOrders",
    ),
    "selections not a list": (
        _set("MedicationRequest/mr-draft-1", "context", "selections"),
        "context.selections",
    ),
    "fhirAuthorization without fhirServer": (_set(AUTH, "fhirAuthorization"), "fhirAuthorization"),
    "fhirServer not a URL": (_set("not a url", "fhirServer"), "fhirServer"),
    "prefetch not an object": (_set([], "prefetch"), "prefetch"),
}


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_a_malformed_hook_request_is_400_naming_where(client: httpx.Client, kind: str) -> None:
    change, path = MALFORMED[kind]
    body = load("order-select-absence-child")
    change(body)
    response = client.post(f"/cds-services/{PACK}-order-select", json=body)
    paths = outcome_paths(response, 400)
    assert [path] in paths, f"no issue names {path}: {response.text}"
    assert TOKEN not in response.text


@pytest.mark.parametrize(
    ("body", "says"),
    [(b"{not json", "not JSON"), (b"[1, 2]", "JSON object"), (b"", "empty"), (b'"x"', "object")],
)
def test_a_body_that_is_not_a_json_object_is_400(
    client: httpx.Client, body: bytes, says: str
) -> None:
    for path in (f"/cds-services/{PACK}-order-sign", f"/cds-services/{PACK}-order-sign/feedback"):
        response = client.post(path, content=body, headers={"content-type": "application/json"})
        outcome_paths(response, 400)
        assert says in response.json()["issue"][0]["diagnostics"]


def test_an_unknown_service_is_404(client: httpx.Client) -> None:
    body = load("order-sign-restless-legs")
    for path in ("/cds-services/no-such-service", "/cds-services/no-such-service/feedback"):
        outcome_paths(client.post(path, json=body), 404)
    outcome_paths(client.get("/no/such/path"), 404)


# --- feedback --------------------------------------------------------------------------------


def _feedback(cards: list[dict[str, Any]], suggestion: str) -> list[dict[str, Any]]:
    reason = cards[1]["overrideReasons"][2]  # clinical judgement
    return [
        {
            "card": cards[0]["uuid"],
            "outcome": "accepted",
            "acceptedSuggestions": [{"id": suggestion}],
            "outcomeTimestamp": "2026-11-25T10:05:31Z",
        },
        {
            "card": cards[1]["uuid"],
            "outcome": "overridden",
            "overrideReason": {"reason": reason, "userComment": "Discussed with the family."},
            "outcomeTimestamp": "2026-11-25T10:06:00.52Z",
        },
        {
            "card": cards[1]["uuid"],
            "outcome": "overridden",
            "outcomeTimestamp": "2026-11-25T10:07:00Z",
        },
    ]


def _check_log(path: Path, cards: list[dict[str, Any]], suggestion: str) -> None:
    rules = rules_of(cards)
    kb = load_knowledge_base()
    lines = path.read_text().splitlines()
    records = [json.loads(line) for line in lines]
    mine = [r for r in records if r["card"] in {c["uuid"] for c in cards}]
    assert len(mine) == 3
    accepted, overridden, bare = mine
    assert accepted["outcome"] == "accepted"
    assert accepted["rule"] == rules[0] and accepted["card_kind"] == "rule"
    assert accepted["accepted_suggestions"] == [suggestion]
    assert overridden["outcome"] == "overridden" and overridden["rule"] == rules[1]
    assert overridden["override_reason"] == "clinical-judgement"
    assert overridden["override_display"] == "Clinical judgement"
    assert overridden["user_comment"] == "Discussed with the family."
    assert bare["override_reason"] is None and bare["rule"] == rules[1]
    assert accepted["pack"] == {"id": kb.id, "version": kb.version, "digest": kb.digest}
    assert dt.datetime.fromisoformat(overridden["outcome_timestamp"]) == dt.datetime(
        2026, 11, 25, 10, 6, 0, 520000, tzinfo=dt.UTC
    )


def _check_summary(path: Path, cards: list[dict[str, Any]]) -> None:
    """`caveat feedback summary` of a log holding the three items of `_feedback` for these cards
    (and perhaps other tests' records, counted too)."""
    rules = rules_of(cards)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    outcomes = Counter(r["outcome"] for r in records)
    text = caveat("feedback", "summary", str(path))
    assert text.returncode == 0, text.stderr
    counts = ", ".join(f"{n} {o}" for o, n in sorted(outcomes.items()))
    assert f"{len(records)} feedback records: {counts}" in text.stdout
    assert f"\n  {rules[0]}: 1 accepted\n" in text.stdout
    assert f"\n  {rules[1]}: 2 overridden\n" in text.stdout
    assert "    overridden, Clinical judgement: 1" in text.stdout
    assert "    overridden, (no reason given): 1" in text.stdout
    data = caveat("feedback", "summary", str(path), "--format", "json")
    assert data.returncode == 0, data.stderr
    summary = json.loads(data.stdout)
    assert summary["records"] == len(records) >= 3 and summary["unreadable"] == []
    assert summary["outcomes"] == dict(outcomes)
    assert summary["per_rule"][rules[0]] == {"accepted": 1}
    assert summary["per_rule"][rules[1]] == {"overridden": 2}
    assert summary["override_reasons"]["Clinical judgement"] == 1
    assert summary["per_rule_reasons"][rules[1]] == {
        "Clinical judgement": 1,
        "(no reason given)": 1,
    }
    if len(records) == 3:
        assert set(summary["per_rule"]) == {rules[0], rules[1]}


def test_feedback_is_logged_per_item_with_the_rule_and_summarised(
    client: httpx.Client, served: Served
) -> None:
    cards = cards_of(client, load("order-sign-absence-child"))
    suggestion = str(uuid.uuid4())
    response = client.post(
        f"/cds-services/{PACK}-order-sign/feedback",
        json={"feedback": _feedback(cards, suggestion)},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"recorded": 3}
    _check_log(served.feedback_log, cards, suggestion)
    _check_summary(served.feedback_log, cards)


def test_feedback_summary_counts_per_rule_and_reason(client: httpx.Client, tmp_path: Path) -> None:
    """The log and its summary, written in this process from the cards of a real hook call
    (independent of how the HTTP layer reads timestamps)."""
    from engine.service.feedback import FeedbackLog

    cards = cards_of(client, load("order-select-panic-beyond-three-years"))
    suggestion = str(uuid.uuid4())
    items = [FeedbackItem.model_validate(i, strict=False) for i in _feedback(cards, suggestion)]
    log = tmp_path / "feedback.jsonl"
    assert FeedbackLog(log).record(load_knowledge_base(), f"{PACK}-order-select", items) == 3
    _check_log(log, cards, suggestion)
    _check_summary(log, cards)


def test_feedback_on_a_card_not_ours_is_kept_as_unknown(
    client: httpx.Client, served: Served
) -> None:
    card = str(uuid.uuid4())
    item = {"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-11-25T11:00:00Z"}
    response = client.post(f"/cds-services/{PACK}-patient-view/feedback", json={"feedback": [item]})
    assert response.status_code == 200, response.text
    [record] = [
        json.loads(line)
        for line in served.feedback_log.read_text().splitlines()
        if json.loads(line)["card"] == card
    ]
    assert record["card_kind"] == "unknown" and record["rule"] is None


BAD_FEEDBACK: dict[str, tuple[dict[str, Any], str]] = {
    "outcome maybe": ({"outcome": "maybe"}, "feedback[0].outcome"),
    "accepted without acceptedSuggestions": ({"outcome": "accepted"}, "feedback[0]"),
    "bad timestamp": ({"outcomeTimestamp": "yesterday"}, "feedback[0].outcomeTimestamp"),
    "no card": ({"card": None}, "feedback[0].card"),
}


@pytest.mark.parametrize("kind", list(BAD_FEEDBACK))
def test_invalid_feedback_is_400_naming_where(client: httpx.Client, kind: str) -> None:
    change, path = BAD_FEEDBACK[kind]
    item = {
        "card": str(uuid.uuid4()),
        "outcome": "overridden",
        "outcomeTimestamp": "2026-11-25T10:00:00Z",
    }
    item.update(change)
    item = {k: v for k, v in item.items() if v is not None}
    response = client.post(f"/cds-services/{PACK}-order-sign/feedback", json={"feedback": [item]})
    assert outcome_paths(response, 400) == [[path]], response.text


@pytest.mark.parametrize("body", [{"feedback": []}, {}, {"feedback": {}}])
def test_feedback_without_items_is_400(client: httpx.Client, body: dict[str, Any]) -> None:
    response = client.post(f"/cds-services/{PACK}-order-sign/feedback", json=body)
    assert outcome_paths(response, 400) == [["feedback"]]


# --- fetching from the client's FHIR server --------------------------------------------------


def _fhir_body(name: str, pid: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A fixture re-addressed to patient `pid`, and its prefetch taken out."""
    old = load(name)["context"]["patientId"]
    body = json.loads(
        json.dumps(load(name))
        .replace(f'"{old}"', f'"{pid}"')
        .replace(f"Patient/{old}", f"Patient/{pid}")
    )
    return body, body.pop("prefetch")


def _routes(prefix: str, pid: str, data: dict[str, Any]) -> dict[str, Any]:
    """What a FHIR server at `prefix` answers to the service's four prefetch queries, by the
    exact path and query the service is expected to send."""
    answers = {
        f"{prefix}/Patient/{pid}": data["patient"],
        f"{prefix}/Condition?patient={pid}&clinical-status=active,recurrence,relapse": data[
            "conditions"
        ],
        f"{prefix}/MedicationRequest?patient={pid}&status=active,on-hold": data[
            "medicationRequests"
        ],
        f"{prefix}/MedicationStatement?patient={pid}&status=active,intended": data[
            "medicationStatements"
        ],
    }
    return {path: (lambda _s, d=d: (200, d)) for path, d in answers.items()}


def _bearer_on_every_request(seen: list[Seen]) -> None:
    assert seen
    for request in seen:
        assert request.headers.get("authorization") == f"Bearer {TOKEN}", request.path
        assert "fhir+json" in request.headers.get("accept", "")


def test_missing_prefetch_is_fetched_from_the_fhir_server(client: httpx.Client) -> None:
    body, data = _fhir_body("order-sign-restless-legs", "p1")
    with small_server(_routes("/fhir", "p1", data)) as fhir:
        body["fhirServer"] = f"{fhir.url}/fhir"
        body["fhirAuthorization"] = AUTH
        cards = cards_of(client, body)
        assert sorted(s.path for s in fhir.seen) == sorted(_routes("/fhir", "p1", data))
        _bearer_on_every_request(fhir.seen)
    assert "rls-third-line" in rules_of(cards)
    assert rules_of(cards) == rules_of(cards_of(client, load("order-sign-restless-legs")))


def test_only_the_missing_keys_are_fetched_and_without_a_token_none_is_sent(
    client: httpx.Client,
) -> None:
    body, data = _fhir_body("order-sign-restless-legs", "p1")
    body["prefetch"] = {"patient": data["patient"], "conditions": data["conditions"]}
    with small_server(_routes("", "p1", data)) as fhir:
        body["fhirServer"] = fhir.url
        cards = cards_of(client, body)
        assert sorted(s.path for s in fhir.seen) == [
            "/MedicationRequest?patient=p1&status=active,on-hold",
            "/MedicationStatement?patient=p1&status=active,intended",
        ]
        assert all("authorization" not in s.headers for s in fhir.seen)
    assert "rls-third-line" in rules_of(cards)


def test_the_patient_id_is_url_encoded_in_the_queries(client: httpx.Client) -> None:
    body, data = _fhir_body("order-sign-restless-legs", "p 1/x&y=z")
    with small_server(_routes("", "p%201%2Fx%26y%3Dz", data)) as fhir:
        body["fhirServer"] = fhir.url
        body["fhirAuthorization"] = AUTH
        cards_of(client, body)  # (not a FHIR id, so its orders are not matched: no cards)
        assert sorted(s.path for s in fhir.seen) == sorted(_routes("", "p%201%2Fx%26y%3Dz", data))


def test_a_dot_segment_patient_id_does_not_read_another_path(client: httpx.Client) -> None:
    body, _ = _fhir_body("order-sign-restless-legs", "..")
    everything = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    with small_server({"/fhir/": lambda _s: (200, everything)}) as fhir:
        body["fhirServer"] = f"{fhir.url}/fhir"
        body["fhirAuthorization"] = AUTH
        response = post(client, body)
        assert "/fhir/" not in [s.path for s in fhir.seen]
    assert outcome_paths(response, 412) == [["prefetch.patient"]]


def test_the_next_links_of_a_search_are_followed(client: httpx.Client) -> None:
    body, data = _fhir_body("order-sign-restless-legs", "p1")
    routes = _routes("/fhir", "p1", data)
    first = "/fhir/Condition?patient=p1&clinical-status=active,recurrence,relapse"
    with small_server(routes) as fhir:
        second, third = f"{fhir.url}/fhir/Condition?_page=2", f"{fhir.url}/fhir/Condition?_page=3"
        page = {"resourceType": "Bundle", "type": "searchset"}
        routes[first] = lambda _s: (
            200,
            {
                **page,
                "link": [{"relation": "self", "url": first}, {"relation": "next", "url": second}],
            },
        )
        fhir.routes.update(routes)
        fhir.routes["/fhir/Condition?_page=2"] = lambda _s: (
            200,
            {**page, "entry": [], "link": [{"relation": "next", "url": third}]},
        )
        fhir.routes["/fhir/Condition?_page=3"] = lambda _s: (200, {**page, **data["conditions"]})
        body["fhirServer"] = f"{fhir.url}/fhir"
        body["fhirAuthorization"] = AUTH
        cards = cards_of(client, body)
        paths = [s.path for s in fhir.seen]
        assert "/fhir/Condition?_page=2" in paths and "/fhir/Condition?_page=3" in paths
        _bearer_on_every_request(fhir.seen)
        assert "rls-third-line" in rules_of(cards)  # the condition is on the third page only
        # a next link off the FHIR server is not followed (it would carry the token elsewhere)
        fhir.seen.clear()
        routes[first] = lambda _s: (
            200,
            {**page, "link": [{"relation": "next", "url": "http://198.51.100.7/Condition?p=2"}]},
        )
        fhir.routes.update(routes)
        response = post(client, body)
    assert outcome_paths(response, 412) == [["prefetch.conditions"]]
    assert TOKEN not in response.text


def _failing(status: int) -> Callable[[Seen], tuple[int, Any]]:
    return lambda _s: (status, {"resourceType": "OperationOutcome", "issue": []})


@pytest.mark.parametrize("failure", ["500", "401", "search 404", "closed port"])
def test_a_failing_fhir_server_is_412_without_the_token(
    client: httpx.Client, served: Served, failure: str
) -> None:
    body, data = _fhir_body("order-sign-restless-legs", "p1")
    routes = _routes("", "p1", data)
    conditions = "/Condition?patient=p1&clinical-status=active,recurrence,relapse"
    if failure in ("500", "401"):
        routes[conditions] = _failing(int(failure))
    elif failure == "search 404":  # a search the server does not know: not "no data"
        del routes[conditions]
    with small_server(routes) as fhir:
        closed = f"http://127.0.0.1:{free_port()}"
        body["fhirServer"] = closed if failure == "closed port" else fhir.url
        body["fhirAuthorization"] = AUTH
        response = post(client, body)
    paths = outcome_paths(response, 412)
    assert paths == [["prefetch.patient" if failure == "closed port" else "prefetch.conditions"]]
    assert TOKEN not in response.text
    assert TOKEN not in served.output()
    if failure in ("500", "401", "search 404"):
        assert f"HTTP {failure.removeprefix('search ')}" in response.text


def test_a_missing_patient_read_is_no_data(client: httpx.Client) -> None:
    body, data = _fhir_body("order-sign-restless-legs", "p1")
    routes = _routes("", "p1", data)
    del routes["/Patient/p1"]  # 404: the read found nothing
    with small_server(routes) as fhir:
        body["fhirServer"] = fhir.url
        cards = cards_of(client, body)
        assert "/Patient/p1" in [s.path for s in fhir.seen]
    assert "rls-third-line" in rules_of(cards)


def test_a_fhir_server_slower_than_the_timeout_is_412(tmp_path: Path) -> None:
    body, data = _fhir_body("order-sign-restless-legs", "p1")
    with (
        serve(tmp_path, "--fetch-timeout", "0.5") as slow_service,
        small_server(_routes("", "p1", data)) as fhir,
        slow_service.client() as c,
    ):
        body["fhirServer"] = fhir.url
        body["fhirAuthorization"] = AUTH
        assert post(c, body).status_code == 200  # answers in time without the delay
        fhir.delay = 3.0
        response = post(c, body)
        paths = outcome_paths(response, 412)
        assert response.elapsed.total_seconds() < 2.5
        assert paths == [["prefetch.patient"]]
        assert "in time" in response.text and TOKEN not in response.text


# --- /evaluate, schemas, readiness -----------------------------------------------------------

SCENARIOS = [
    {"conditions": ["restless legs syndrome"], "therapy": {"line": 3}},
    {"id": "child", "patient": {"age": 8}, "conditions": [{"code": "G40.A09", "system": ICD}]},
    {"conditions": [PANIC, "gingivitis"], "therapy": LONG_PANIC, "medications": ["sertraline"]},
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=["rls", "child", "panic"])
def test_evaluate_answers_what_the_engine_does(
    client: httpx.Client, scenario: dict[str, Any]
) -> None:
    response = client.post("/evaluate", json=scenario)
    assert response.status_code == 200, response.text
    assert response.json() == evaluate(copy.deepcopy(scenario)).model_dump(mode="json")


def test_evaluate_refuses_a_bad_scenario_naming_each_problem(client: httpx.Client) -> None:
    response = client.post(
        "/evaluate", json={"conditions": "x", "patient": {"age": -3}, "bogus": 1}
    )
    paths = outcome_paths(response, 400)
    assert sorted(paths) == [["bogus"], ["conditions"], ["patient.age"]]


@pytest.mark.parametrize("name", ["scenario", "result"])
def test_the_json_schemas_are_served(client: httpx.Client, name: str) -> None:
    from engine.schemas import json_schema

    response = client.get(f"/schemas/{name}.json")
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["$schema"].startswith("https://json-schema.org/")
    assert data == json.loads(json.dumps(json_schema(name)))


def test_healthz_names_the_pack_served(client: httpx.Client) -> None:
    kb = load_knowledge_base()
    response = client.get("/healthz")
    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "ready" and data["services"] == len(HOOKS)
    [pack] = data["packs"]
    assert (pack["id"], pack["version"], pack["digest"]) == (kb.id, kb.version, kb.digest)


# --- concurrency -----------------------------------------------------------------------------


def test_64_concurrent_calls_are_each_answered_correctly(
    client: httpx.Client, served: Served
) -> None:
    names = [*CASES, "order-sign-unrecognised", "order-sign-other-drug", "order-sign-null-prefetch"]
    expected = {name: rules_of(cards_of(client, load(name))) for name in names}
    calls = [names[i % len(names)] for i in range(64)]

    async def run() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(base_url=served.url, timeout=60, limits=limits) as c:
            return await asyncio.gather(*(c.post(url_of(load(n)), json=load(n)) for n in calls))

    responses = asyncio.run(run())
    uuids: list[str] = []
    for name, response in zip(calls, responses, strict=True):
        assert response.status_code == 200, (name, response.text[:300])
        cards = check_cards(response.json())
        assert rules_of(cards) == expected[name], name
        uuids += [c["uuid"] for c in cards]
    assert len(set(uuids)) == len(uuids)
