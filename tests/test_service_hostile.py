"""Hostile input to `caveat serve`, over HTTP to one real server (--max-body 1M): every answer is
200 (cards), 400, 404, 405, 412 or 413, never 5xx, never a stack trace, and every refusal is an
OperationOutcome; the body limit holds before parsing; floods of never-seen strings leave the
server's memory where it was."""

from __future__ import annotations

import contextlib
import copy
import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from servers import Served, serve

HOOKS = ("order-select", "order-sign", "patient-view")
SELECT = "/cds-services/clonazepam-order-select"
LIMIT = 1024 * 1024
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
WRONG = [None, True, 1, 1.5, "x", [], {}, "y" * 10_000]
ODD = [-1, 2**63, 1e308, "", "\u0000", "\u202e\ud83d\ude00"]  # beyond the brief's eight
PREFETCH_KEYS = ("patient", "conditions", "medicationRequests", "medicationStatements")


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }


def hook_request(i: int = 0, hook: str = "order-select") -> dict[str, Any]:
    """A valid call of the clonazepam service for patient `i`: an epileptic adult, a draft
    long-term clonazepam order selected, phenytoin ordered, lorazepam taken. Every id, code and
    label carries `i`, so that each `i` is a request never seen before."""
    pid = f"pat-{i}"
    subject = {"reference": f"Patient/{pid}"}
    draft = {
        "resourceType": "MedicationRequest",
        "id": f"m{i}",
        "status": "draft",
        "intent": "order",
        "subject": subject,
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": "2598", "display": "clonazepam"}],
            "text": f"clonazepam 0.5 mg tablet, label {i}",
        },
        "courseOfTherapyType": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy",
                    "code": "continuous",
                }
            ]
        },
    }
    condition = {
        "resourceType": "Condition",
        "id": f"c{i}",
        "subject": subject,
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "code": {"coding": [{"system": ICD10, "code": "G40.909"}], "text": "Epilepsy"},
    }
    unknown = {
        "resourceType": "Condition",
        "id": f"u{i}",
        "subject": subject,
        "code": {
            "coding": [{"system": ICD10, "code": f"Z{i % 100:02d}.{i}"}],
            "text": f"words {i}",
        },
    }
    other = {
        "resourceType": "MedicationRequest",
        "id": f"r{i}",
        "status": "active",
        "intent": "order",
        "subject": subject,
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": str(8183 if i == 0 else 900_000 + i)}],
            "text": f"phenytoin {i}",
        },
    }
    taken = {
        "resourceType": "MedicationStatement",
        "id": f"s{i}",
        "status": "active",
        "subject": subject,
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": "6470"}],
            "text": "lorazepam",
        },
    }
    context: dict[str, Any] = {"userId": f"Practitioner/{i}", "patientId": pid}
    if hook != "patient-view":
        context["draftOrders"] = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": draft}],
        }
    if hook == "order-select":
        context["selections"] = [f"MedicationRequest/m{i}"]
    return {
        "hook": hook,
        "hookInstance": f"0e6b1c2a-{i:04x}-4a1b-9c3d-{i:012x}",
        "context": context,
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": pid, "birthDate": "1980-05-01"},
            "conditions": bundle(condition, unknown),
            "medicationRequests": bundle(other)
            if hook != "patient-view"
            else bundle(other, draft | {"status": "active"}),
            "medicationStatements": bundle(taken),
        },
    }


VALID = hook_request()


def paths(value: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield at
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*at, index))


def replaced(data: Any, at: tuple[Any, ...], value: Any) -> Any:
    if not at:
        return value
    out = copy.deepcopy(data)
    place = out
    for part in at[:-1]:
        place = place[part]
    place[at[-1]] = value
    return out


def post(client: httpx.Client, url: str, data: Any) -> httpx.Response:
    return client.post(url, content=json.dumps(data), headers={"Content-Type": "application/json"})


def refusal(response: httpx.Response, *statuses: int) -> list[dict[str, Any]]:
    """The issues of an OperationOutcome answered with one of `statuses`."""
    assert response.status_code in statuses, (response.status_code, response.text[:500])
    assert "Traceback" not in response.text and 'File "' not in response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    assert body["issue"] and all(i["diagnostics"] and i["code"] for i in body["issue"]), body
    return body["issue"]


def answered(response: httpx.Response, where: Any = None) -> dict[str, Any] | None:
    """200 with well-formed cards, or a 400/412 OperationOutcome; never anything else."""
    assert response.status_code in (200, 400, 412), (
        where,
        response.status_code,
        response.text[:500],
    )
    if response.status_code != 200:
        refusal(response, 400, 412)
        return None
    assert "Traceback" not in response.text
    cards = response.json()["cards"]
    for card in cards:
        assert card["indicator"] in ("info", "warning") and len(card["summary"]) < 140, card
        assert card["detail"] and card["source"]["label"] and card["uuid"], card
    return response.json()


def unreadable(cards: dict[str, Any]) -> str:
    """The "could not be read" part of the info card, or ""."""
    for card in cards["cards"]:
        if card["extension"]["org.caveat.card"]["kind"] == "undecided":
            detail = card["detail"]
            start = detail.find("Could not be read")
            return detail[start:] if start >= 0 else ""
    return ""


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def raw(served: Served, data: bytes, timeout: float = 10) -> bytes:
    """Send bytes on a connection of their own, half-close it, and read what comes back."""
    host, port = served.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
        return out


def statuses(answer: bytes) -> list[int]:
    return [int(line.split()[1]) for line in answer.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("hostile"), "--max-body", "1M") as running:
        yield running
        log = running.output()
    # nothing reached the "unexpected failure" handler, and no trace was logged
    assert "Traceback" not in log and "unexpected failure" not in log, log[-3000:]


@pytest.fixture(scope="module")
def client(served: Served) -> Iterator[httpx.Client]:
    with served.client() as open_client:
        yield open_client


def healthy(client: httpx.Client) -> None:
    assert client.get("/healthz").json()["status"] == "ready"
    cards = answered(post(client, SELECT, VALID))
    assert cards is not None and any(
        c["extension"]["org.caveat.card"]["kind"] == "statement" for c in cards["cards"]
    )


# -- the valid request itself -------------------------------------------------------------------


def test_the_valid_request_gets_statement_cards_on_every_hook(client):
    for hook in HOOKS:
        cards = answered(post(client, f"/cds-services/clonazepam-{hook}", hook_request(hook=hook)))
        assert cards is not None, hook
        rules = {c["extension"]["org.caveat.card"].get("rule") for c in cards["cards"]}
        assert "indication-seizures" in rules, (hook, rules)
        assert unreadable(cards) == "", hook


# -- malformed bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"hook": "order-select", "context": {', "not JSON"),
        (b'{"hook": "order-select"} trailing', "not JSON"),
        (b'{"hook": "order-\xff\xfe"}', "not JSON"),
        (b'{"hook": "\xed\xa0\x80"}', "not JSON"),  # a surrogate encoded as UTF-8
        (b'{"hookInstance": NaN}', "not JSON"),
        (b'{"hookInstance": Infinity}', "not JSON"),
        (b'{"hookInstance": 1e400}', "not JSON"),
        (b'{"hook": "\\ud800"}', "not JSON"),  # a lone surrogate escape
        (b'{"hook": "\\udc00\\ud800"}', "not JSON"),
        (b"", "empty"),
        (b" \r\n\t ", "empty"),
        (b"\xef\xbb\xbf{}", "not JSON"),
        (b"[]", "JSON object"),
        (b'"order-select"', "JSON object"),
        (b"null", "JSON object"),
        (b"[" * 10_000 + b"]" * 10_000, "JSON"),
        (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "JSON"),
        (b"[" * 10_000, "JSON"),
        (b"[" * 100 + b"]" * 100, "nested"),
        (b'{"a":' * 100 + b"1" + b"}" * 100, "nested"),
    ],
)
def test_malformed_json_is_a_400_outcome(client, body, words):
    for url in (SELECT, "/cds-services/clonazepam-patient-view/feedback", "/evaluate"):
        issues = refusal(client.post(url, content=body), 400)
        assert words in issues[0]["diagnostics"], (url, issues)
        assert len(issues[0]["diagnostics"]) < 500


def test_deep_nesting_inside_a_valid_request_is_refused(client):
    deep: Any = "leaf"
    for level in range(200):
        deep = [deep] if level % 2 else {"x": deep}
    for at in (
        ("context", "extra"),
        ("prefetch", "patient", "extension"),
        ("prefetch", "conditions"),
    ):
        issues = refusal(post(client, SELECT, replaced(VALID, at, deep)), 400)
        assert "nested more than 64" in issues[0]["diagnostics"]


# -- the body limit -----------------------------------------------------------------------------


def fifty_megabytes() -> Iterator[bytes]:
    chunk = b"[" * 65536
    for _ in range(800):
        yield chunk


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_fifty_megabytes_streamed_are_413_quickly_and_not_kept(served, client, declared):
    headers = {"Content-Length": str(800 * 65536)} if declared else {}
    before = rss_kib(served.process.pid)
    start = time.monotonic()
    response = client.post(SELECT, content=fifty_megabytes(), headers=headers)
    took = time.monotonic() - start
    issues = refusal(response, 413)
    assert "1,048,576 bytes" in issues[0]["diagnostics"]
    assert took < 10, took
    assert rss_kib(served.process.pid) - before < 20 * 1024  # the body was not held
    healthy(client)


def first_answer(served: Served, head: bytes, body: bytes) -> tuple[bytes, float]:
    """Send a request's head and the start of its body, and read the answer without sending the
    rest (or closing): the answer comes only if the server refuses before reading it all."""
    host, port = served.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        start = time.monotonic()
        sock.sendall(head + body)
        out = b""
        while b"\r\n\r\n" not in out or not out.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            out += chunk
        return out, time.monotonic() - start


def test_a_declared_length_over_the_limit_is_refused_on_the_header(served):
    head = (
        f"POST {SELECT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {50 * 1024 * 1024}\r\n\r\n"
    )
    answer, took = first_answer(served, head.encode(), b"[" * 65536)
    assert statuses(answer) == [413] and b"OperationOutcome" in answer, answer[:300]
    assert took < 5


def test_a_chunked_body_is_refused_once_past_the_limit(served):
    head = (
        f"POST {SELECT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"10000\r\n" + b"[" * 65536 + b"\r\n"
    answer, took = first_answer(served, head.encode(), chunk * 17)  # 1.06 MiB, never ended
    assert statuses(answer) == [413] and b"too-costly" in answer, answer[:300]
    assert took < 5


def test_the_limit_is_exact(client):
    at_limit = b" " * (LIMIT - 2) + b"{}"
    response = client.post("/evaluate", content=at_limit)  # read and parsed: not 413
    assert response.status_code in (200, 400) and "Traceback" not in response.text, response.text
    refusal(client.post("/evaluate", content=at_limit + b" "), 413)


def test_a_body_over_the_limit_on_every_post_route(client):
    big = json.dumps({"x": "y" * LIMIT}).encode()
    for url in (SELECT, "/cds-services/clonazepam-order-sign/feedback", "/evaluate"):
        refusal(client.post(url, content=big), 413)
        refusal(client.post(url, content=iter([big])), 413)  # chunked


def test_lying_content_lengths(served, client):
    head = f"POST {SELECT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    body = json.dumps(VALID).encode()
    # shorter than the body: the first part is read, is not JSON, and is refused
    answer = raw(served, (head + "Content-Length: 10\r\n\r\n").encode() + body)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:300]
    assert b'"resourceType":"OperationOutcome"' in answer and b"not JSON" in answer
    assert all(400 <= s < 500 for s in statuses(answer)), answer
    # longer than the body, and the client goes: nothing to answer, or a 400; no trace logged
    answer = raw(served, (head + f"Content-Length: {len(body) + 1000}\r\n\r\n").encode() + body)
    assert all(s == 400 for s in statuses(answer)), answer
    # over the limit, and a lie too: refused on the header
    answer = raw(served, (head + "Content-Length: 99999999999\r\n\r\n{}").encode())
    assert statuses(answer) == [413] and b"OperationOutcome" in answer, answer
    # framing the HTTP layer refuses (a plain-text 400 from uvicorn: never 5xx)
    for bad in (
        "Content-Length: -5",
        "Content-Length: abc",
        "Content-Length: 5\r\nContent-Length: 6",
    ):
        answer = raw(served, (head + bad + "\r\n\r\n{}").encode())
        assert statuses(answer) and all(400 <= s < 500 for s in statuses(answer)), (bad, answer)
        assert b"Traceback" not in answer
    healthy(client)


# -- wrong types at every path ------------------------------------------------------------------


@pytest.mark.parametrize("value", WRONG + ODD, ids=lambda v: repr(v)[:12])
def test_a_wrong_value_at_every_path_of_a_hook_request(client, value):
    every = list(paths(VALID))
    assert len(every) > 100
    for at in every:
        answered(post(client, SELECT, replaced(VALID, at, value)), at)


@pytest.mark.parametrize("key", PREFETCH_KEYS)
def test_a_malformed_prefetch_resource_is_reported_not_fatal(client, key):
    resource = ("prefetch", key) if key == "patient" else ("prefetch", key, "entry", 0, "resource")
    inner = VALID
    for part in resource:
        inner = inner[part]
    for at in paths(inner):
        for value in WRONG:
            answered(
                post(client, SELECT, replaced(VALID, resource + at, value)), (resource + at, value)
            )
    # the resource itself not a resource: 200, and the info card says where and that it was not read
    for value in [v for v in WRONG if v is not None and v != [] and v != {}] + [
        {"resourceType": 7}
    ]:
        cards = answered(post(client, SELECT, replaced(VALID, resource, value)), (resource, value))
        assert cards is not None, (key, value)
        text = unreadable(cards)
        assert f"{key}" in text, (key, value, text)
    if key != "patient":  # an entry's resource null or empty is reported too
        for value in (None, [], {}):
            cards = answered(post(client, SELECT, replaced(VALID, resource, value)))
            assert cards is not None and f"{key}.entry[0]" in unreadable(cards), (key, value)


@pytest.mark.parametrize("value", [[], {}], ids=["list", "object"])
def test_an_empty_object_or_list_as_the_patient_is_reported(client, value):
    cards = answered(post(client, SELECT, replaced(VALID, ("prefetch", "patient"), value)))
    assert cards is not None and "patient" in unreadable(cards)


def test_a_large_prefetch_within_the_limit_is_answered_in_time(client):
    request = hook_request(7)
    entry = request["prefetch"]["conditions"]["entry"][1]["resource"]
    request["prefetch"]["conditions"]["entry"] += [
        {"resource": entry | {"id": f"x{n}", "code": {"text": f"label {n}"}}} for n in range(3000)
    ]
    start = time.monotonic()
    cards = answered(post(client, SELECT, request))
    assert cards is not None and time.monotonic() - start < 10
    issues = refusal(post(client, "/evaluate", {"conditions": ["x"] * 100_000}), 400)
    assert issues


# -- routes -------------------------------------------------------------------------------------


def test_unknown_services_and_routes_are_404_outcomes(client):
    issues = refusal(post(client, "/cds-services/no-such-service", VALID), 404)
    assert "no-such-service" in issues[0]["diagnostics"]
    long_id = "z" * 5000
    response = post(client, f"/cds-services/{long_id}", VALID)
    refusal(response, 404)
    assert len(response.text) < 600  # the id is not echoed whole
    refusal(post(client, "/cds-services/no-such-service/feedback", {"feedback": []}), 404)
    refusal(client.get("/nowhere"), 404)
    refusal(client.get("/schemas/secrets.json"), 404)
    refusal(client.get("/schemas/../../etc/passwd"), 404)


@pytest.mark.parametrize(
    ("method", "url", "allowed"),
    [
        ("GET", SELECT, "POST"),
        ("GET", "/evaluate", "POST"),
        ("DELETE", "/cds-services/clonazepam-order-sign/feedback", "POST"),
        ("POST", "/cds-services", "GET"),
        ("PUT", "/healthz", "GET"),
    ],
)
def test_a_wrong_method_is_405_with_allow(client, method, url, allowed):
    response = client.request(method, url)
    refusal(response, 405)
    assert allowed in response.headers.get("allow", ""), dict(response.headers)


# -- fuzzing ------------------------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(
        [
            "order-select",
            "Patient",
            "Bundle",
            "MedicationRequest",
            "MedicationStatement",
            "Condition",
            "2598",
            "N03AE01",
            "G40.909",
            "active",
            "draft",
            "continuous",
            "pat-0",
            "Patient/pat-0",
            "MedicationRequest/m0",
            "1980",
            "2020-02-30",
            "1980-05-01",
            RXNORM,
            ICD10,
            "a" * 300,
        ]
    ),
)
KEYS = st.sampled_from(
    [
        "resourceType",
        "id",
        "entry",
        "resource",
        "code",
        "coding",
        "system",
        "text",
        "birthDate",
        "status",
        "intent",
        "subject",
        "reference",
        "medicationCodeableConcept",
        "medicationReference",
        "contained",
        "clinicalStatus",
        "verificationStatus",
        "courseOfTherapyType",
        "dosageInstruction",
        "timing",
        "repeat",
        "boundsDuration",
        "boundsPeriod",
        "value",
        "unit",
        "start",
        "end",
        "dispenseRequest",
        "expectedSupplyDuration",
        "numberOfRepeatsAllowed",
        "effectivePeriod",
    ]
) | st.text(max_size=10)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=30,
)
PATHS = list(paths(VALID))


@settings(max_examples=150)
@given(
    changes=st.lists(st.tuples(st.sampled_from(PATHS), JSON), min_size=1, max_size=4),
    hook=st.sampled_from(HOOKS),
)
def test_fuzzed_hook_requests(client, changes, hook):
    body: Any = hook_request(hook=hook)
    for at, value in changes:
        with contextlib.suppress(KeyError, IndexError, TypeError):  # a change removed the place
            body = replaced(body, at, value)
    answered(post(client, f"/cds-services/clonazepam-{hook}", body), changes)


@settings(max_examples=80)
@given(
    body=JSON.map(lambda d: json.dumps(d).encode()) | st.binary(max_size=300),
    url=st.sampled_from(
        [SELECT, "/cds-services/clonazepam-patient-view/feedback", "/evaluate", "/cds-services/x"]
    ),
)
def test_fuzzed_bodies_on_every_post_route(client, body, url):
    response = client.post(url, content=body)
    if response.status_code != 200:
        refusal(response, 400, 404, 412, 413)
    else:
        assert "Traceback" not in response.text and isinstance(response.json(), dict)


# -- floods and memory --------------------------------------------------------------------------


def flood(client: httpx.Client, start: int, count: int) -> None:
    for i in range(start, start + count):
        if i % 10 == 0:  # a never-seen scenario for /evaluate
            scenario = {
                "id": f"scenario {i}",
                "patient": {"age": i % 90},
                "conditions": [
                    f"never seen condition {i}",
                    {"system": "ICD-10-CM", "code": f"Q{i % 100:02d}.{i}"},
                ],
                "medications": [
                    f"drug words {i}",
                    {"system": "RxNorm", "code": str(1_000_000 + i)},
                ],
            }
            response = post(client, "/evaluate", scenario)
            assert response.status_code in (200, 400), (i, response.text[:300])
            assert "Traceback" not in response.text
        elif i % 10 == 1:  # a never-seen service id
            refusal(post(client, f"/cds-services/svc-{i}", VALID), 404)
        else:
            hook = HOOKS[i % 3]
            cards = answered(
                post(client, f"/cds-services/clonazepam-{hook}", hook_request(i, hook)), i
            )
            assert cards is not None, i


def test_floods_of_never_seen_strings_leave_memory_bounded(served, client):
    flood(client, 1, 400)  # warm-up: every code path and cache in use
    before = rss_kib(served.process.pid)
    start = time.monotonic()
    flood(client, 1000, 3000)
    took = time.monotonic() - start
    after = rss_kib(served.process.pid)
    print(f"\nRSS after warm-up {before} KiB, after 3,000 more {after} KiB ({took:.1f} s)")
    assert after - before < 50 * 1024, (before, after)
    healthy(client)


# -- concurrency --------------------------------------------------------------------------------


def hostile(n: int, url: str) -> int:
    bodies: list[Any] = [
        b"[" * 10_000,
        b'{"hook": "\xff"}',
        json.dumps(replaced(VALID, ("context",), "y" * 10_000)).encode(),
        iter([b"[" * 65536] * 20),  # over the limit, chunked
        b'{"hook": "\\ud800"}',
        json.dumps(replaced(VALID, ("context",), [[[1]]] * 1000)).encode(),
        b"",
        json.dumps({"feedback": [{"card": "x" * 300, "outcome": "accepted"}]}).encode(),
    ]
    with httpx.Client(
        base_url=url, timeout=30, headers={"Content-Type": "application/json"}
    ) as own:
        target = "/cds-services/clonazepam-order-sign/feedback" if n % 8 == 7 else SELECT
        return own.post(target, content=bodies[n % len(bodies)]).status_code


def test_concurrent_hostile_requests_do_not_break_a_following_valid_one(served, client):
    with ThreadPoolExecutor(64) as pool:
        codes = list(pool.map(lambda n: hostile(n, served.url), range(64)))
    assert all(400 <= code < 500 for code in codes), codes
    assert {400, 413} <= set(codes)
    healthy(client)
    assert len(answered(post(client, SELECT, hook_request(99)))["cards"]) >= 3


@pytest.mark.parametrize("kind", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_not_declared_json_is_415_and_changes_nothing(served: Served, kind: str | None):
    # found in review: a web page on any site may POST text/plain without asking (no CORS
    # preflight), so with --auth none it could have written feedback or made the service fetch
    body = json.dumps(
        {
            "feedback": [
                {"card": "x", "outcome": "overridden", "outcomeTimestamp": "2026-11-25T10:00:00Z"}
            ]
        }
    )
    before = served.feedback_log.read_bytes() if served.feedback_log.exists() else b""
    headers = {"Origin": "https://elsewhere.example"} | ({"Content-Type": kind} if kind else {})
    response = httpx.post(
        f"{served.url}/cds-services/clonazepam-order-sign/feedback",
        content=body,
        headers=headers,
        timeout=10,
    )
    issues = refusal(response, 415)
    assert "application/json" in issues[0]["diagnostics"]
    after = served.feedback_log.read_bytes() if served.feedback_log.exists() else b""
    assert after == before
