"""`caveat serve --auth jwks` over HTTP: tokens minted here (EC P-384 and RSA 3072 keys made here,
their public halves in JWK Set files the auth config names) are accepted on every CDS endpoint
with `aud` the endpoint's own URL, and every failed check is a 401 OperationOutcome naming the
check, never quoting the token. Also the start-up refusals of `--auth`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import caveat
from cryptography.hazmat.primitives import serialization
from joserfc import jws
from joserfc.jwk import ECKey, Key, RSAKey
from servers import Served, free_port, serve

ISS_EC = "https://ehr.example.org/"
ISS_RSA = "https://partner.example.org/fhir"
SELECT = "/cds-services/clonazepam-order-select"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


@pytest.fixture(scope="module")
def keys() -> dict[str, Key]:
    return {
        "ec": ECKey.generate_key("P-384", {"kid": "ehr-ec-1"}),
        "rsa": RSAKey.generate_key(3072, {"kid": "partner-rsa-1"}),
        "stranger": ECKey.generate_key("P-384", {"kid": "ehr-ec-1"}),  # same kid, other key
    }


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, Key]) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("jwt")
    (tmp / "keys").mkdir()
    for name in ("ec", "rsa"):
        jwks = {"keys": [keys[name].as_dict(private=False)]}
        (tmp / "keys" / f"{name}.json").write_text(json.dumps(jwks))
    config = tmp / "auth.yaml"
    config.write_text(
        f"issuers:\n  - iss: {ISS_EC}\n    jwks_file: keys/ec.json\n"
        f"  - iss: {ISS_RSA}\n    jwks_file: keys/rsa.json\n"
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = ("--auth", "jwks", "--auth-config", str(config), "--base-url", base)
    with serve(tmp, *args, port=port) as running:
        assert running.url == base
        yield running


@pytest.fixture(scope="module")
def client(served: Served) -> Iterator[httpx.Client]:
    with served.client() as open_client:
        yield open_client


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(aud: str, iss: str = ISS_EC, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    out = {"iss": iss, "aud": aud, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    out.update(changes)
    return {k: v for k, v in out.items() if v is not None}


def mint(key: Key, payload: dict[str, Any], alg: str = "ES384", **header: Any) -> str:
    head = {"alg": alg, "typ": "JWT", "kid": key.kid} | header
    head = {k: v for k, v in head.items() if v is not None}
    return jws.serialize_compact(head, json.dumps(payload).encode(), key, algorithms=[alg])


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    return (
        f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}.{b64(signature)}"
    )


def small_request() -> dict[str, Any]:
    subject = {"reference": "Patient/p1"}
    draft = {
        "resourceType": "MedicationRequest",
        "id": "m1",
        "status": "draft",
        "intent": "order",
        "subject": subject,
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "2598"}]},
    }
    condition = {
        "resourceType": "Condition",
        "id": "c1",
        "subject": subject,
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "G40.909"}]},
    }
    return {
        "hook": "order-select",
        "hookInstance": str(uuid.uuid4()),
        "context": {
            "patientId": "p1",
            "selections": ["MedicationRequest/m1"],
            "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": draft}]},
        },
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "p1", "birthDate": "1980-05-01"},
            "conditions": {"resourceType": "Bundle", "entry": [{"resource": condition}]},
            "medicationRequests": None,
            "medicationStatements": None,
        },
    }


FEEDBACK = {
    "feedback": [
        {
            "card": "0e6b1c2a-0000-8000-8000-000000000000",
            "outcome": "overridden",
            "overrideReason": {"userComment": "known"},
            "outcomeTimestamp": "2026-11-25T10:00:00Z",
        }
    ]
}
# name -> (method, path, JSON body)
ENDPOINTS: dict[str, tuple[str, str, Any]] = {
    "discovery": ("GET", "/cds-services", None),
    "hook": ("POST", SELECT, None),  # a fresh small_request() each time
    "feedback": ("POST", SELECT + "/feedback", FEEDBACK),
    "evaluate": ("POST", "/evaluate", {"patient": {"age": 30}, "conditions": ["epilepsy"]}),
}


def call(
    client: httpx.Client, endpoint: str, authorization: str | None, **headers: str
) -> httpx.Response:
    method, path, body = ENDPOINTS[endpoint]
    if authorization is not None:
        headers["Authorization"] = authorization
    if method == "GET":
        return client.get(path, headers=headers)
    data = small_request() if endpoint == "hook" else body
    return client.post(path, json=data, headers=headers)


def audience(served: Served, endpoint: str) -> str:
    return served.url + ENDPOINTS[endpoint][1]


def accepted(response: httpx.Response, endpoint: str) -> None:
    assert response.status_code == 200, (endpoint, response.text[:500])
    data = response.json()
    if endpoint == "discovery":
        assert {s["id"] for s in data["services"]} >= {"clonazepam-order-select"}
    elif endpoint == "hook":
        rules = {c["extension"]["org.caveat.card"].get("rule") for c in data["cards"]}
        assert "indication-seizures" in rules, rules
    elif endpoint == "feedback":
        assert data == {"recorded": 1}
    else:
        assert any(s["rule"] == "indication-seizures" for s in data["statements"]), data


def refused(response: httpx.Response, check: str, authorization: str | None) -> str:
    """A 401 OperationOutcome naming `check`, quoting nothing of the token; its diagnostics."""
    assert response.status_code == 401, (check, response.status_code, response.text[:500])
    assert response.headers["www-authenticate"].startswith("Bearer"), dict(response.headers)
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    [issue] = body["issue"]
    assert issue["code"] == "security"
    assert f"the {check!r} check" in issue["diagnostics"], (check, issue)
    token = (authorization or "").split()[-1] if (authorization or "").strip() else ""
    seen = response.text + json.dumps(dict(response.headers))
    for part in [token, *token.split(".")]:
        if len(part) >= 8:
            assert part not in seen, (check, part)
    return issue["diagnostics"]


# -- accepted ------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("signer", ["ES384", "RS384"])
def test_a_valid_token_is_accepted_on_every_endpoint(served, client, keys, endpoint, signer):
    key, iss = (keys["ec"], ISS_EC) if signer == "ES384" else (keys["rsa"], ISS_RSA)
    token = mint(key, claims(audience(served, endpoint), iss), signer)
    accepted(call(client, endpoint, f"Bearer {token}"), endpoint)


def test_aud_as_a_list_naming_the_endpoint_is_accepted(served, client, keys):
    aud = [audience(served, "discovery"), audience(served, "evaluate")]
    token = mint(keys["ec"], claims(aud))  # type: ignore[arg-type]
    accepted(call(client, "evaluate", f"bearer {token}"), "evaluate")


def test_health_and_schemas_need_no_token(client):
    for path in ("/healthz", "/schemas/scenario.json", "/schemas/result.json"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:300])
        assert "www-authenticate" not in response.headers
    assert client.get("/healthz").json()["status"] == "ready"


# -- refused -------------------------------------------------------------------------------------


def hs256_with_the_public_key(keys: dict[str, Key], aud: str) -> str:
    """The key-confusion attack: the RSA public key, which anyone has, as an HMAC secret."""
    pem = keys["rsa"].public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "partner-rsa-1"}).encode())
    body = b64(json.dumps(claims(aud, ISS_RSA)).encode())
    signature = hmac.new(pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"Bearer {head}.{body}.{b64(signature)}"


def tampered(keys: dict[str, Key], aud: str) -> str:
    head, _, signature = mint(keys["ec"], claims(aud)).split(".")
    changed = b64(json.dumps(claims(aud, tenant="someone else")).encode())
    return f"Bearer {head}.{changed}.{signature}"


def other_endpoint(endpoint: str) -> str:
    names = list(ENDPOINTS)
    return names[(names.index(endpoint) + 1) % len(names)]


# name -> (check, authorization for an audience); None: no header at all
REFUSALS: dict[str, tuple[str, Callable[[dict[str, Key], str, str], str | None]]] = {
    "no header": ("header-missing", lambda k, aud, other: None),
    "empty header": ("header-missing", lambda k, aud, other: ""),
    "basic scheme": ("scheme", lambda k, aud, other: "Basic dXNlcjpwYXNzd29yZA=="),
    "token without scheme": ("scheme", lambda k, aud, other: mint(k["ec"], claims(aud))),
    "garbage": ("malformed", lambda k, aud, other: "Bearer garbage-garbage-garbage"),
    "garbage in three parts": ("malformed", lambda k, aud, other: "Bearer aaaaaaaaa.bbbbbbbbb.c"),
    "alg none": (
        "alg",
        lambda k, aud, other: (
            "Bearer " + unsigned({"alg": "none", "typ": "JWT", "kid": "ehr-ec-1"}, claims(aud))
        ),
    ),
    "HS256 with the public key": ("alg", lambda k, aud, other: hs256_with_the_public_key(k, aud)),
    "missing kid": (
        "kid",
        lambda k, aud, other: (
            "Bearer " + unsigned({"alg": "ES384", "typ": "JWT"}, claims(aud), b"s" * 96)
        ),
    ),
    "unknown kid": ("kid", lambda k, aud, other: "Bearer " + mint(k["ec"], claims(aud), kid="k9")),
    "typ wrong": (
        "typ",
        lambda k, aud, other: "Bearer " + mint(k["ec"], claims(aud), typ="at+jwt"),
    ),
    "typ missing": ("typ", lambda k, aud, other: "Bearer " + mint(k["ec"], claims(aud), typ=None)),
    "untrusted iss": (
        "iss",
        lambda k, aud, other: "Bearer " + mint(k["ec"], claims(aud, "https://evil.example/")),
    ),
    "another issuer's key": (
        "signature",
        lambda k, aud, other: "Bearer " + mint(k["stranger"], claims(aud)),
    ),
    "aud of another endpoint": (
        "aud",
        lambda k, aud, other: "Bearer " + mint(k["ec"], claims(other)),
    ),
    "aud on another host": (
        "aud",
        lambda k, aud, other: (
            "Bearer " + mint(k["ec"], claims(aud.replace("127.0.0.1", "localhost")))
        ),
    ),
    "aud missing": (
        "aud",
        lambda k, aud, other: "Bearer " + mint(k["ec"], claims(aud) | {"aud": None}),
    ),
    "expired": (
        "exp",
        lambda k, aud, other: (
            "Bearer "
            + mint(k["ec"], claims(aud, exp=int(time.time()) - 120, iat=int(time.time()) - 200))
        ),
    ),
    "iat in the future": (
        "iat",
        lambda k, aud, other: (
            "Bearer "
            + mint(k["ec"], claims(aud, iat=int(time.time()) + 600, exp=int(time.time()) + 900))
        ),
    ),
    "stale iat": (
        "iat",
        lambda k, aud, other: (
            "Bearer "
            + mint(k["ec"], claims(aud, iat=int(time.time()) - 3600, exp=int(time.time()) + 300))
        ),
    ),
    "missing jti": ("jti", lambda k, aud, other: "Bearer " + mint(k["ec"], claims(aud, jti=None))),
    "tampered payload": ("signature", lambda k, aud, other: tampered(k, aud)),
    "RS384 token, signature cut": (
        "signature",
        lambda k, aud, other: (
            "Bearer " + mint(k["rsa"], claims(aud, ISS_RSA), "RS384").rsplit(".", 1)[0] + "."
        ),
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_each_failed_check_is_a_401_naming_it(served, client, keys, case):
    check, make = REFUSALS[case]
    for endpoint in ENDPOINTS:
        authorization = make(
            keys, audience(served, endpoint), audience(served, other_endpoint(endpoint))
        )
        response = call(client, endpoint, authorization)
        refused(response, check, authorization)


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_a_replayed_token_is_refused_the_second_time(served, client, keys, endpoint):
    authorization = "Bearer " + mint(
        keys["rsa"], claims(audience(served, endpoint), ISS_RSA), "RS384"
    )
    accepted(call(client, endpoint, authorization), endpoint)
    refused(call(client, endpoint, authorization), "replay", authorization)


def test_a_refused_token_is_not_remembered_as_used(served, client, keys):
    """A token refused for its audience does not spend its jti: the same jti, properly addressed,
    is still accepted (only tokens that pass every other check are remembered)."""
    jti = str(uuid.uuid4())
    wrong = "Bearer " + mint(keys["ec"], claims(audience(served, "discovery"), jti=jti))
    refused(call(client, "evaluate", wrong), "aud", wrong)
    right = "Bearer " + mint(keys["ec"], claims(audience(served, "evaluate"), jti=jti))
    accepted(call(client, "evaluate", right), "evaluate")


def test_an_unknown_service_is_401_before_404(served, client, keys):
    response = client.post("/cds-services/no-such-service", json=small_request())
    refused(response, "header-missing", None)
    token = mint(keys["ec"], claims(served.url + "/cds-services/no-such-service"))
    response = client.post(
        "/cds-services/no-such-service",
        json=small_request(),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 404 and response.json()["resourceType"] == "OperationOutcome"


def test_no_token_is_refused_before_a_large_body_is_read(client):
    response = client.post(SELECT, content=b"[" * (4 * 1024 * 1024))
    refused(response, "header-missing", None)


# -- start-up ------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_auth_none_off_loopback_will_not_start(host):
    result = caveat("serve", "--auth", "none", "--host", host, "--port", "0", timeout=60)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "--auth none" in result.stderr and "loopback" in result.stderr, result.stderr
    assert host in result.stderr


def test_auth_none_is_the_default_and_is_also_refused_off_loopback():
    result = caveat("serve", "--host", "0.0.0.0", timeout=60)
    assert result.returncode == 2 and "loopback" in result.stderr, result.stderr


def test_auth_jwks_needs_a_config(tmp_path: Path):
    result = caveat("serve", "--auth", "jwks", timeout=60)
    assert result.returncode == 2 and "--auth-config" in result.stderr, result.stderr
    result = caveat(
        "serve", "--auth", "jwks", "--auth-config", str(tmp_path / "nowhere.yaml"), timeout=60
    )
    assert result.returncode == 2 and "nowhere.yaml" in result.stderr, result.stderr


def test_auth_none_on_loopback_says_so_at_start(tmp_path: Path):
    with serve(tmp_path, "--auth", "none") as running, running.client() as open_client:
        assert open_client.get("/cds-services").status_code == 200  # no token needed
        output = running.output()
    assert "authentication: none" in output and "loopback" in output, output


def test_auth_jwks_start_up_names_the_config(served):
    assert "authentication: JWTs of the issuers in" in served.output()
    assert "authentication: none" not in served.output()
