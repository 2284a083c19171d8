"""Edges of the service that an independent review found, each pinned: an order whose drug is not
recognised, data about someone else, loose feedback timestamps, a FHIR server that trickles."""

from __future__ import annotations

import copy
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cdshooks import check_cards
from conftest import FIXTURES
from hypothesis import given
from hypothesis import strategies as st
from servers import Served, serve

REQUESTS = FIXTURES / "fhir" / "requests"
SIGN = "/cds-services/clonazepam-order-sign"


def load(name: str) -> dict[str, Any]:
    return json.loads((REQUESTS / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("edges"), "--fetch-timeout", "1") as running:
        yield running


@pytest.fixture(scope="module")
def client(served: Served) -> Iterator[httpx.Client]:
    with served.client() as open_client:
        yield open_client


def _draft_drug(request: dict[str, Any], concept: dict[str, Any]) -> dict[str, Any]:
    request = copy.deepcopy(request)
    order = request["context"]["draftOrders"]["entry"][0]["resource"]
    order["medicationCodeableConcept"] = concept
    return request


@pytest.mark.parametrize(
    "concept",
    [
        {"text": "clonazepam 0.5mg tablets"},  # words only, naming the drug loosely
        {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "99999"}]},
        {"text": "Rivotril"},  # a brand the pack does not know, in words only
    ],
    ids=["words-naming-it", "unknown-code-no-words", "unknown-brand"],
)
def test_an_order_the_pack_cannot_read_gets_a_card_saying_so(client: httpx.Client, concept):
    request = _draft_drug(load("order-sign-restless-legs"), concept)
    response = client.post(SIGN, json=request)
    assert response.status_code == 200, response.text
    cards = check_cards(response.json())
    assert len(cards) == 1
    card = cards[0]
    assert card["indicator"] == "info"
    assert card["summary"].startswith("Could not tell whether this order is for clonazepam")
    assert card["extension"]["org.caveat.card"]["kind"] == "unrecognised-order"
    order = request["context"]["draftOrders"]["entry"][0]["resource"]["id"]
    assert f"MedicationRequest/{order}" in card["extension"]["org.caveat.card"]["orders"]


def test_an_order_known_to_be_another_drug_gets_no_cards(client: httpx.Client):
    other = {
        "coding": [
            {
                "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                "code": "312940",
                "display": "sertraline 50 MG Oral Tablet",
            }
        ]
    }
    response = client.post(SIGN, json=_draft_drug(load("order-sign-restless-legs"), other))
    assert response.status_code == 200 and response.json() == {"cards": []}


def test_data_about_another_patient_than_the_context_is_400(client: httpx.Client):
    request = load("order-sign-restless-legs")
    request["context"]["patientId"] = "someone-else"
    response = client.post(SIGN, json=request)
    assert response.status_code == 400, response.text
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["prefetch.patient"]
    assert "someone-else" in issue["diagnostics"] and "someone else" in issue["diagnostics"]


@pytest.mark.parametrize(
    "stamp",
    ["1700000000", "2021-12-11", "2021-12-11T10:05:31", "11/12/2021 10:05", "2021-12-11T10:05Z"],
)
def test_a_feedback_timestamp_that_is_not_rfc_3339_with_a_zone_is_400(client, stamp: str):
    body = {
        "feedback": [
            {"card": "x", "outcome": "overridden", "outcomeTimestamp": stamp},
        ]
    }
    response = client.post(f"{SIGN}/feedback", json=body)
    assert response.status_code == 400, (stamp, response.text)
    assert "RFC 3339" in response.text


def test_rfc_3339_timestamps_with_a_zone_are_accepted(client, served: Served):
    for stamp in ("2021-12-11T10:05:31Z", "2021-12-11T10:05:31.52+01:00"):
        body = {"feedback": [{"card": "x", "outcome": "overridden", "outcomeTimestamp": stamp}]}
        assert client.post(f"{SIGN}/feedback", json=body).status_code == 200
    lines = served.feedback_log.read_text().splitlines()
    assert json.loads(lines[-1])["outcome_timestamp"] == "2021-12-11T10:05:31.520000+01:00"


def _trickling_server(stop: threading.Event) -> tuple[socket.socket, int]:
    """A FHIR server that answers every request one byte every 0.3 s, for ever."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve_one(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            body = json.dumps({"resourceType": "Patient", "id": "p"}).encode() * 100
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            try:
                conn.sendall(head)
                for byte in body:
                    if stop.is_set():
                        return
                    conn.sendall(bytes([byte]))
                    time.sleep(0.3)
            except OSError:
                return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener, listener.getsockname()[1]


def test_a_fhir_server_that_trickles_is_cut_off_at_the_deadline(client: httpx.Client):
    # found in review: the timeout held per read, so a byte every 3 s held a request for ever
    stop = threading.Event()
    listener, port = _trickling_server(stop)
    try:
        request = load("order-sign-restless-legs")
        del request["prefetch"]
        request["fhirServer"] = f"http://127.0.0.1:{port}"
        start = time.monotonic()
        response = client.post(SIGN, json=request)
        took = time.monotonic() - start
        assert response.status_code == 412, response.text
        assert took < 5, took  # --fetch-timeout 1 for the whole fetch
        assert "in time" in response.json()["issue"][0]["diagnostics"]
    finally:
        stop.set()
        listener.close()


def test_jwt_auth_on_a_port_chosen_at_start_needs_the_base_url():
    from conftest import caveat

    proc = caveat("serve", "--port", "0", "--auth", "jwks", "--auth-config", "x.yaml", timeout=60)
    assert proc.returncode == 2 and "give --base-url" in proc.stderr, proc.stderr


def test_an_ipv6_host_makes_a_url_with_brackets(tmp_path):
    with serve(tmp_path, "--host", "::1", ready=False) as running:
        deadline = time.monotonic() + 30
        while "discovery:" not in running.output() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "discovery: http://[::1]:" in running.output(), running.output()


def test_a_browser_client_of_an_allowed_origin_may_call_the_service(tmp_path):
    # the CDS Hooks sandbox runs in a browser: CORS, and Chrome's Private Network Access
    # preflight for a public page calling a loopback address
    sandbox = "https://sandbox.cds-hooks.org"
    with serve(tmp_path, "--allow-origin", sandbox) as running:
        preflight = {
            "Origin": sandbox,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
            "Access-Control-Request-Private-Network": "true",
        }
        url = f"{running.url}{SIGN}"
        answer = httpx.options(url, headers=preflight, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.headers["access-control-allow-origin"] == sandbox
        assert answer.headers["access-control-allow-private-network"] == "true"
        other = httpx.options(url, headers={**preflight, "Origin": "https://elsewhere.example"})
        assert other.status_code == 400  # refused: no origin allowed, so the browser stops
        assert "access-control-allow-origin" not in other.headers
        found = httpx.get(f"{running.url}/cds-services", headers={"Origin": sandbox}, timeout=10)
        assert found.headers["access-control-allow-origin"] == sandbox


def _nesting(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_nesting(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_nesting(v) for v in value), default=0)
    return 0


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(alphabet='[]{}"\\ab\n'),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=30,
)


@given(_JSON)
def test_the_depth_of_a_body_is_counted_outside_its_strings(value: Any):
    # the service bounds nesting by counting brackets in the bytes, strings left out
    import orjson

    from engine.service.app import depth_of

    assert depth_of(orjson.dumps(value)) == _nesting(value)
