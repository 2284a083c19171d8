"""The CDS Hooks client-JWT checks (engine.service.auth): tokens minted here with keys made here,
one issuer's keys in a JWK Set file and another's served over loopback HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from joserfc import jws
from joserfc.jwk import ECKey, Key, OctKey, RSAKey

from engine.service.auth import (
    AuthConfig,
    AuthConfigError,
    AuthError,
    JwtVerifier,
    TrustedIssuer,
    load_auth_config,
)

NOW = 1_800_000_000.0
ISS_A = "https://ehr-a.example.org/"
ISS_B = "https://ehr-b.example.org/"
AUD = "https://cds.example.org/cds-services/some-service"


@pytest.fixture(scope="module")
def keys() -> dict[str, Key]:
    return {
        "a-ec": ECKey.generate_key("P-384", {"kid": "a-ec"}),
        "a-rsa": RSAKey.generate_key(3072, {"kid": "a-rsa"}),
        "b-ec": ECKey.generate_key("P-384", {"kid": "b-ec"}),
        "b-new": ECKey.generate_key("P-384", {"kid": "b-new"}),
        "p256": ECKey.generate_key("P-256", {"kid": "p256"}),
    }


def public_set(*pairs: Key) -> dict[str, Any]:
    return {"keys": [key.as_dict(private=False) for key in pairs]}


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


class Server:
    """A JWK Set served on 127.0.0.1, counting requests."""

    def __init__(self) -> None:
        self.body: dict[str, Any] = {"keys": []}
        self.status = 200
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                data = json.dumps(outer.body).encode()
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True)
        self.thread.start()


@pytest.fixture
def server(keys: dict[str, Key]) -> Iterator[Server]:
    srv = Server()
    srv.body = public_set(keys["b-ec"], keys["p256"])
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()
    srv.thread.join()


def write_config(tmp_path: Path, server: Server, keys: dict[str, Key], extra: str = "") -> Path:
    (tmp_path / "keys").mkdir(exist_ok=True)
    (tmp_path / "keys" / "a.json").write_text(json.dumps(public_set(keys["a-ec"], keys["a-rsa"])))
    path = tmp_path / "auth.yaml"
    path.write_text(
        f"issuers:\n  - iss: {ISS_A}\n    jwks_file: keys/a.json\n"
        f"  - iss: {ISS_B}\n    jwks_url: {server.url}\n{extra}"
    )
    return path


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verifier(tmp_path: Path, server: Server, keys: dict[str, Key], clock: Clock) -> JwtVerifier:
    return JwtVerifier(load_auth_config(write_config(tmp_path, server, keys)), clock=clock)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_for(clock: Clock, **changes: Any) -> dict[str, Any]:
    claims = {
        "iss": ISS_A,
        "aud": AUD,
        "exp": clock.now + 300,
        "iat": clock.now,
        "jti": f"jti-{clock.now}-{sorted(changes.items())}",
        "tenant": "org-1",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def mint(key: Key, claims: dict[str, Any], alg: str = "ES384", **header: Any) -> str:
    head = {"alg": alg, "typ": "JWT", "kid": key.kid} | header
    head = {k: v for k, v in head.items() if v is not None}
    payload = json.dumps(claims).encode()
    return jws.serialize_compact(head, payload, key, algorithms=[alg])


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}.{b64(signature)}"


def refuse(verifier: JwtVerifier, authorization: str | None, check: str) -> AuthError:
    with pytest.raises(AuthError) as info:
        verifier.verify(authorization, AUD)
    error = info.value
    assert error.check == check, error.message
    assert check in error.message
    token = (authorization or "").split()[-1] if (authorization or "").strip() else ""
    for part in [token, *token.split(".")]:
        if len(part) >= 8:
            assert part not in error.message
            assert part not in str(error)
    return error


# -- accepted ------------------------------------------------------------------------------------


def test_accepts_es384_and_rs384_from_a_jwks_file(verifier, keys, clock):
    claims = verifier.verify("Bearer " + mint(keys["a-ec"], claims_for(clock)), AUD)
    assert claims["iss"] == ISS_A and claims["tenant"] == "org-1"
    rsa = mint(keys["a-rsa"], claims_for(clock, jti="r1"), "RS384")
    assert verifier.verify("bearer " + rsa, AUD)["jti"] == "r1"  # the scheme is case-insensitive


def test_accepts_aud_as_a_list_and_exp_within_the_clock_skew(verifier, keys, clock):
    token = mint(keys["a-ec"], claims_for(clock, aud=["https://other", AUD], exp=clock.now - 29))
    assert verifier.verify(f"Bearer {token}", AUD)["aud"][1] == AUD


def test_jwks_url_is_fetched_once_and_cached(verifier, keys, clock, server):
    for jti in ("u1", "u2", "u3"):
        token = mint(keys["b-ec"], claims_for(clock, iss=ISS_B, jti=jti))
        assert verifier.verify(f"Bearer {token}", AUD)["jti"] == jti
    assert server.hits == 1


def test_unknown_kid_refetches_at_most_once_a_minute(verifier, keys, clock, server):
    verifier.verify("Bearer " + mint(keys["b-ec"], claims_for(clock, iss=ISS_B)), AUD)
    assert server.hits == 1
    server.body = public_set(keys["b-ec"], keys["b-new"])  # the client rotates in a new key
    clock.now += 30
    refuse(verifier, "Bearer " + mint(keys["b-new"], claims_for(clock, iss=ISS_B)), "kid")
    assert server.hits == 1  # fetched 30 s ago: not again
    clock.now += 31
    token = mint(keys["b-new"], claims_for(clock, iss=ISS_B))
    assert verifier.verify(f"Bearer {token}", AUD)["iss"] == ISS_B
    assert server.hits == 2
    for _ in range(5):
        clock.now += 1
        refuse(verifier, "Bearer " + mint(keys["a-ec"], claims_for(clock, iss=ISS_B)), "kid")
    assert server.hits == 2


def test_an_unreachable_jwks_url_is_the_jwks_check_and_not_hammered(verifier, keys, clock, server):
    server.status = 500
    for _ in range(3):
        refuse(verifier, "Bearer " + mint(keys["b-ec"], claims_for(clock, iss=ISS_B)), "jwks")
    assert server.hits == 1
    server.status = 200
    clock.now += 60
    assert verifier.verify("Bearer " + mint(keys["b-ec"], claims_for(clock, iss=ISS_B)), AUD)
    assert server.hits == 2


def test_jku_must_be_the_configured_url_and_is_never_fetched(verifier, keys, clock, server):
    evil = "http://127.0.0.1:9/evil.json"
    token = mint(keys["b-ec"], claims_for(clock, iss=ISS_B), jku=evil)
    refuse(verifier, f"Bearer {token}", "jku")
    token = mint(keys["b-ec"], claims_for(clock, iss=ISS_B, jti="j2"), jku=server.url)
    assert verifier.verify(f"Bearer {token}", AUD)["jti"] == "j2"
    # a jwks_file issuer's keys are pinned: its jku is ignored, not fetched
    token = mint(keys["a-ec"], claims_for(clock, jti="j3"), jku=server.url)
    assert verifier.verify(f"Bearer {token}", AUD)["jti"] == "j3"
    assert server.hits == 1


# -- refused -------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "", "   "])
def test_no_authorization_header(verifier, header):
    refuse(verifier, header, "header-missing")


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer a.b.c extra", "JWT x"])
def test_not_a_bearer_header(verifier, header):
    refuse(verifier, header, "scheme")


@pytest.mark.parametrize(
    "token",
    [
        "garbage-not-a-jwt-at-all",
        "aaaaaaaa.bbbbbbbb.cccccccc",
        b64(b"[1, 2]") + "." + b64(b"{}") + ".c2ln",
        b64(b'{"alg": "ES384", "alg": "none"}') + "." + b64(b"{}") + ".c2ln",
        "x" * 20000 + ".a.b",
        "ünïcode.a.b",
    ],
)
def test_garbage_tokens_are_malformed(verifier, token):
    refuse(verifier, f"Bearer {token}", "malformed")


def test_crit_and_b64_extensions_are_refused(verifier, keys, clock):
    token = unsigned({"alg": "ES384", "typ": "JWT", "kid": "a-ec", "crit": ["x"], "x": 1}, {})
    refuse(verifier, f"Bearer {token}", "malformed")


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_refused(verifier, clock, alg):
    token = unsigned({"alg": alg, "typ": "JWT", "kid": "a-ec"}, claims_for(clock))
    assert "none" in refuse(verifier, f"Bearer {token}", "alg").message


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_signed_with_the_public_key_is_refused(verifier, keys, clock, alg):
    """The key-confusion attack: the public key, which anyone has, used as an HMAC secret."""
    pem = keys["a-rsa"].public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64(json.dumps({"alg": alg, "typ": "JWT", "kid": "a-rsa"}).encode())
    payload = b64(json.dumps(claims_for(clock)).encode())
    digest = getattr(hashlib, f"sha{alg[2:]}")
    signature = hmac.new(pem, f"{header}.{payload}".encode(), digest).digest()
    error = refuse(verifier, f"Bearer {header}.{payload}.{b64(signature)}", "alg")
    assert "symmetric" in error.message


def test_other_algs_and_missing_alg_are_refused(verifier, keys, clock):
    refuse(verifier, "Bearer " + unsigned({"typ": "JWT", "kid": "a-ec"}, claims_for(clock)), "alg")
    es512 = unsigned({"alg": "ES512", "typ": "JWT", "kid": "a-ec"}, claims_for(clock), b"x" * 132)
    refuse(verifier, f"Bearer {es512}", "alg")
    # an accepted alg that does not fit the key: RS384 on an EC key, ES256 on a P-384 key
    rs_on_ec = mint(keys["a-rsa"], claims_for(clock), "RS384", kid="a-ec")
    refuse(verifier, f"Bearer {rs_on_ec}", "alg")
    es256 = mint(keys["p256"], claims_for(clock), "ES256", kid="a-ec")
    refuse(verifier, f"Bearer {es256}", "alg")


@pytest.mark.parametrize("typ", [None, "jose", "JWS"])
def test_typ_must_be_jwt(verifier, keys, clock, typ):
    refuse(verifier, "Bearer " + mint(keys["a-ec"], claims_for(clock), typ=typ), "typ")
    odd = unsigned({"alg": "ES384", "typ": 1, "kid": "a-ec"}, claims_for(clock), b"s" * 96)
    refuse(verifier, f"Bearer {odd}", "typ")


def test_kid_missing_or_unknown(verifier, keys, clock):
    no_kid = unsigned({"alg": "ES384", "typ": "JWT"}, claims_for(clock), b"s" * 96)
    refuse(verifier, f"Bearer {no_kid}", "kid")
    refuse(verifier, "Bearer " + mint(keys["a-ec"], claims_for(clock), kid="nope"), "kid")


def test_untrusted_or_missing_iss(verifier, keys, clock):
    for iss in ("https://evil.example.org/", None, 7):
        refuse(verifier, "Bearer " + mint(keys["a-ec"], claims_for(clock, iss=iss)), "iss")


def test_a_key_of_another_issuer_is_refused(verifier, keys, clock):
    # B's key, claiming to be A: B's kid is not in A's set ...
    refuse(verifier, "Bearer " + mint(keys["b-ec"], claims_for(clock, iss=ISS_A)), "kid")
    # ... and naming A's kid, the signature does not verify with A's key
    forged = mint(keys["b-ec"], claims_for(clock, iss=ISS_A), kid="a-ec")
    refuse(verifier, f"Bearer {forged}", "signature")


def test_tampered_tokens_fail_the_signature(verifier, keys, clock):
    token = mint(keys["a-ec"], claims_for(clock))
    head, _, sig = token.split(".")
    changed = b64(json.dumps(claims_for(clock, tenant="org-2")).encode())
    refuse(verifier, f"Bearer {head}.{changed}.{sig}", "signature")
    flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    refuse(verifier, f"Bearer {head}.{token.split('.')[1]}.{flipped}", "signature")
    refuse(verifier, f"Bearer {head}.{token.split('.')[1]}.", "signature")
    assert verifier.verify(f"Bearer {token}", AUD)  # the untouched one still passes


@pytest.mark.parametrize(
    "aud", ["https://cds.example.org/cds-services", [], ["x"], None, AUD + "/"]
)
def test_aud_must_be_this_endpoint(verifier, keys, clock, aud):
    refuse(verifier, "Bearer " + mint(keys["a-ec"], claims_for(clock, aud=aud)), "aud")


@pytest.mark.parametrize(
    ("change", "check"),
    [
        ({"exp": NOW - 31}, "exp"),
        ({"exp": None}, "exp"),
        ({"exp": "soon"}, "exp"),
        ({"exp": True}, "exp"),
        ({"iat": NOW + 31}, "iat"),
        ({"iat": NOW - 331}, "iat"),
        ({"iat": None}, "iat"),
        ({"nbf": NOW + 60}, "nbf"),
        ({"jti": None}, "jti"),
        ({"jti": ""}, "jti"),
        ({"jti": 5}, "jti"),
    ],
)
def test_time_and_nonce_claims(verifier, keys, clock, change, check):
    refuse(verifier, "Bearer " + mint(keys["a-ec"], claims_for(clock, **change)), check)


def test_just_inside_the_age_and_future_limits_is_accepted(verifier, keys, clock):
    for jti, iat in (("old", NOW - 329), ("early", NOW + 29)):
        token = mint(keys["a-ec"], claims_for(clock, iat=iat, jti=jti))
        assert verifier.verify(f"Bearer {token}", AUD)["jti"] == jti


def test_a_replayed_jti_is_refused_and_forgotten_when_the_token_dies(verifier, keys, clock):
    token = mint(keys["a-ec"], claims_for(clock, jti="once"))
    verifier.verify(f"Bearer {token}", AUD)
    refuse(verifier, f"Bearer {token}", "replay")
    again = mint(keys["a-ec"], claims_for(clock, jti="once", tenant="other"))
    refuse(verifier, f"Bearer {again}", "replay")
    # the same jti from another issuer is another nonce
    assert verifier.verify(
        "Bearer " + mint(keys["b-ec"], claims_for(clock, iss=ISS_B, jti="once")), AUD
    )
    clock.now += 331  # past exp (and iat + max age) + skew: refused by time, no longer remembered
    refuse(verifier, f"Bearer {token}", "exp")
    fresh = mint(keys["a-ec"], claims_for(clock, jti="fresh"))
    verifier.verify(f"Bearer {fresh}", AUD)
    assert len(verifier._seen) == 1


def test_a_full_replay_cache_refuses_new_tokens_until_entries_expire(tmp_path, server, keys, clock):
    config = load_auth_config(write_config(tmp_path, server, keys, "replay_cache_size: 2\n"))
    verifier = JwtVerifier(config, clock=clock)
    for jti in ("1", "2"):
        verifier.verify(
            "Bearer " + mint(keys["a-ec"], claims_for(clock, jti=jti, exp=NOW + 10)), AUD
        )
    refuse(
        verifier, "Bearer " + mint(keys["a-ec"], claims_for(clock, jti="3")), "replay-cache-full"
    )
    clock.now += 41  # past exp + skew of the first two
    assert verifier.verify("Bearer " + mint(keys["a-ec"], claims_for(clock, jti="3")), AUD)


def test_concurrent_replays_let_exactly_one_through(verifier, keys, clock):
    token = mint(keys["a-ec"], claims_for(clock, jti="race"))
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def attempt() -> None:
        barrier.wait()
        try:
            verifier.verify(f"Bearer {token}", AUD)
            outcomes.append("ok")
        except AuthError as exc:
            outcomes.append(exc.check)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok"] + ["replay"] * 7


# -- the config file -----------------------------------------------------------------------------


def test_config_paths_are_relative_to_the_file(tmp_path, server, keys, monkeypatch):
    path = write_config(tmp_path, server, keys, "max_token_age_seconds: 120\n")
    monkeypatch.chdir(tmp_path / "keys")
    config = load_auth_config(path)
    assert config.max_token_age_seconds == 120 and config.clock_skew_seconds == 30
    assert [i.iss for i in config.issuers] == [ISS_A, ISS_B]
    assert set(config._file_keys[ISS_A]) == {"a-ec", "a-rsa"}


def test_a_json_config_and_a_directly_built_one(tmp_path, keys, clock):
    (tmp_path / "a.json").write_text(json.dumps(public_set(keys["a-ec"])))
    path = tmp_path / "auth.json"
    path.write_text(json.dumps({"issuers": [{"iss": ISS_A, "jwks_file": "a.json"}]}))
    token = mint(keys["a-ec"], claims_for(clock))
    assert JwtVerifier(load_auth_config(path), clock=clock).verify(f"Bearer {token}", AUD)
    direct = AuthConfig(issuers=[TrustedIssuer(iss=ISS_A, jwks_file=tmp_path / "a.json")])
    assert JwtVerifier(direct, clock=clock).verify(f"Bearer {token}", AUD)


def config_error(tmp_path: Path, text: str, jwks: Any = None) -> str:
    if jwks is not None:
        (tmp_path / "k.json").write_text(json.dumps(jwks))
    path = tmp_path / "auth.yaml"
    path.write_text(text)
    with pytest.raises(AuthConfigError) as info:
        load_auth_config(path)
    message = str(info.value)
    assert str(path) in message
    return message


def test_config_missing_file(tmp_path):
    with pytest.raises(AuthConfigError, match=r"nowhere\.yaml: no such file"):
        load_auth_config(tmp_path / "nowhere.yaml")


def test_config_bad_yaml(tmp_path):
    assert "auth.yaml:3:1: not valid YAML" in config_error(tmp_path, "issuers:\n  - iss: [a\n")


def test_config_jwks_file_missing(tmp_path):
    message = config_error(tmp_path, f"issuers:\n  - iss: {ISS_A}\n    jwks_file: gone.json\n")
    assert "auth.yaml:3:16: issuers[0].jwks_file" in message and "gone.json" in message
    assert "no such file" in message


def test_config_symmetric_private_and_weak_keys_in_the_jwks(tmp_path, keys):
    text = f"issuers:\n  - iss: {ISS_B}\n    jwks_url: https://b.example/j\n"
    text += f"  - iss: {ISS_A}\n    jwks_file: k.json\n"
    oct_key = OctKey.generate_key(256, {"kid": "s"}).as_dict(private=True)
    message = config_error(tmp_path, text, {"keys": [keys["a-ec"].as_dict(private=False), oct_key]})
    assert "issuers[1].jwks_file" in message and "keys[1]" in message and "symmetric" in message
    private = keys["a-ec"].as_dict(private=True)
    assert "private" in config_error(tmp_path, text, {"keys": [private]})
    no_kid = {k: v for k, v in keys["a-ec"].as_dict(private=False).items() if k != "kid"}
    assert "kid" in config_error(tmp_path, text, {"keys": [no_kid]})
    with pytest.warns(Warning):
        weak = RSAKey.generate_key(1024, {"kid": "w"}, private=False)
    assert "1024-bit" in config_error(tmp_path, text, {"keys": [weak.as_dict()]})
    assert "JWK Set" in config_error(tmp_path, text, {"keys": []})


@pytest.mark.parametrize(
    ("issuer", "place", "words"),
    [
        ("jwks_url: http://ehr.example.org/jwks", "issuers[0]", "https"),
        ("jwks_url: ftp://ehr.example.org/jwks", "issuers[0]", "http(s)"),
        ("jwks_url: https://a/j\n    jwks_file: k.json", "issuers[0]", "exactly one"),
        ("", "issuers[0]", "exactly one"),
        ("jwks_url: https://a/j\n    jwks_uri: https://a/j", "issuers[0].jwks_uri", "spelling"),
    ],
)
def test_config_issuer_errors(tmp_path, issuer, place, words):
    lines = f"issuers:\n  - iss: {ISS_A}\n    {issuer}\n"
    message = config_error(tmp_path, lines)
    assert f": {place}" in message and words in message


def test_config_loopback_http_is_allowed(tmp_path):
    for host in ("127.0.0.1:8080", "localhost", "[::1]"):
        (tmp_path / "auth.yaml").write_text(
            f"issuers:\n  - iss: {ISS_A}\n    jwks_url: http://{host}/jwks\n"
        )
        assert load_auth_config(tmp_path / "auth.yaml").issuers[0].jwks_url.startswith("http://")


def test_config_duplicate_iss_empty_list_and_bad_numbers(tmp_path):
    one = f"  - iss: {ISS_A}\n    jwks_url: https://a/j\n"
    assert "issuers[1].iss repeats issuers[0].iss" in config_error(tmp_path, "issuers:\n" + one * 2)
    assert "issuers" in config_error(tmp_path, "issuers: []\n")
    message = config_error(tmp_path, "issuers:\n" + one + "clock_skew_seconds: -5\n")
    assert "auth.yaml:4:21: clock_skew_seconds" in message
