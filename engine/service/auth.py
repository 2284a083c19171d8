"""Verifying the JWTs CDS Clients sign, as CDS Hooks 2.0 "Trusting CDS Clients" requires.

Each request carries `Authorization: Bearer <JWT>`. A token is accepted only if, in this order:
its JOSE header names an accepted asymmetric `alg` (`none` and HMAC are refused before any key is
looked up), `typ` is "JWT" and `kid` is set; its `iss` is on the allow-list; a `jku`, if sent,
equals the issuer's configured `jwks_url` (for a `jwks_file` issuer it is ignored; it is never
fetched: keys come only from the config); the signature verifies with the issuer's key of that
`kid`; `aud` is the endpoint called; `exp` has not passed, `nbf` (if sent) has, and `iat` is
neither in the future nor older than `max_token_age_seconds` (each with `clock_skew_seconds` of
slack); `jti` was not seen before.

AuthError.check names the check that failed (the service answers 401 for all of them, except
"jwks" and "replay-cache-full", which are ours to fix and deserve a 503):
  header-missing, scheme, malformed, alg, typ, kid, iss, jku, jwks, signature, aud, exp, nbf,
  iat, jti, replay, replay-cache-full.
Messages never quote the token; claim values quoted are shortened reprs.

Algorithms: ES384 and RS384 (the spec's RECOMMENDED pair), ES256, RS256, RS512, PS256, PS384,
PS512; keys are EC P-256/P-384 (ES256/ES384 respectively) or RSA of at least 2048 bits.

There is no separate maximum token lifetime: a token is accepted only while its `iat` is within
`max_token_age_seconds`, so a far-off `exp` buys nothing, and a seen `jti` is remembered until
min(exp, iat + max_token_age_seconds) + clock_skew_seconds, when the token would be refused anyway.
The replay cache holds at most `replay_cache_size` entries (only tokens that passed every other
check, so only trusted signers can fill it); when it is full, new tokens are refused with
"replay-cache-full" rather than forgetting a live `jti`.

A `jwks_url` set is fetched on first use, again after an hour, and on an unknown `kid`, but at
most once per 60 s per issuer (failures included); redirects are not followed.
"""

from __future__ import annotations

import hashlib
import heapq
import ipaddress
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, Key
from joserfc.util import urlsafe_b64decode
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from engine.jsonfile import parse_json
from engine.reading import InputError, decode, read_limited
from engine.yamlfile import YamlProblem, locate, parse_yaml

ACCEPTED_ALGS: dict[str, tuple[str, str | None]] = {  # alg -> (kty, EC curve)
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    **dict.fromkeys(("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"), ("RSA", None)),
}
MIN_RSA_BITS = 2048
MAX_TOKEN_CHARS = 16 * 1024
MAX_FILE_BYTES = 1024 * 1024  # a config or JWK Set file, or a fetched JWK Set
REFETCH_SECONDS = 60.0  # at most one fetch of an issuer's jwks_url per this many seconds
REFRESH_SECONDS = 3600.0  # a fetched set older than this is fetched again when next used
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
_REGISTRY = jws.JWSRegistry(algorithms=list(ACCEPTED_ALGS), strict_check_header=False)


class AuthConfigError(ValueError):
    """An auth config (or a JWK Set it names) that cannot be used; the message names the file,
    the place in it and the likely fix."""


class AuthError(Exception):
    """A request refused: `check` is the failed check's fixed name (see the module docstring),
    `message` says why, without any part of the token."""

    def __init__(self, check: str, message: str) -> None:
        super().__init__(f"JWT refused by the {check!r} check: {message}")
        self.check = check
        self.message = str(self)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _loopback(host: str | None) -> bool:
    try:
        return host is not None and (host == "localhost" or ipaddress.ip_address(host).is_loopback)
    except ValueError:
        return False


class TrustedIssuer(BaseModel):
    """A CDS Client trusted to call the service, and where its public keys (a JWK Set) are."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    iss: str = Field(min_length=1, description="The `iss` claim this client's tokens carry.")
    jwks_url: str | None = Field(
        default=None,
        description="Its JWK Set URL: https, or http only to a loopback host (127.0.0.1, ::1, "
        "localhost). A token's `jku` header, if sent, must equal it.",
    )
    jwks_file: Path | None = Field(
        default=None,
        description="Its JWK Set as a file (exchanged out of band), relative to the config file "
        "(to the working directory for an AuthConfig built in code).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> TrustedIssuer:
        if (self.jwks_url is None) == (self.jwks_file is None):
            raise ValueError("give exactly one of jwks_url and jwks_file (where its keys are)")
        if self.jwks_url is not None:
            parts = urlsplit(self.jwks_url)
            if not parts.hostname or parts.scheme not in ("https", "http"):
                raise ValueError(f"jwks_url {self.jwks_url!r} is not an http(s) URL")
            if parts.scheme == "http" and not _loopback(parts.hostname):
                raise ValueError(
                    f"jwks_url {self.jwks_url!r} uses plain http to a non-loopback host: use "
                    "https (keys fetched over http could be swapped in transit)"
                )
        return self


class AuthConfig(BaseModel):
    """Which CDS Clients are trusted, and how old and how far off-clock their tokens may be."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issuers: list[TrustedIssuer] = Field(
        min_length=1, description="The trusted CDS Clients, each `iss` once."
    )
    max_token_age_seconds: int = Field(
        default=300, ge=1, le=86400, description="A token whose `iat` is older is refused."
    )
    clock_skew_seconds: int = Field(
        default=30, ge=0, le=600, description="Slack allowed on `exp`, `nbf` and `iat`."
    )
    replay_cache_size: int = Field(
        default=100_000, ge=1, description="At most this many `jti`s are remembered."
    )
    _file_keys: dict[str, dict[str, Key]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _unique_iss(self) -> AuthConfig:
        first: dict[str, int] = {}
        for index, issuer in enumerate(self.issuers):
            if issuer.iss in first:
                raise ValueError(
                    f"issuers[{index}].iss repeats issuers[{first[issuer.iss]}].iss "
                    f"{_short(issuer.iss)}: merge the two entries"
                )
            first[issuer.iss] = index
        return self


def parse_jwks(data: Any) -> dict[str, Key]:
    """The keys of a JWK Set by `kid`; ValueError (naming e.g. `keys[1]`) unless every key is an
    EC P-256/P-384 or RSA >= 2048-bit public signing key with a unique `kid`."""
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list) or not data["keys"]:
        raise ValueError('not a JWK Set: expected {"keys": [...]} with at least one key')
    keys: dict[str, Key] = {}
    for index, jwk in enumerate(data["keys"]):
        place = f"keys[{index}]"
        if not isinstance(jwk, dict):
            raise ValueError(f"{place}: not a JSON object")
        kid, kty = jwk.get("kid"), jwk.get("kty")
        if not isinstance(kid, str) or not kid:
            raise ValueError(f"{place}: no `kid`; CDS Hooks tokens name their key by `kid`")
        if kid in keys:
            raise ValueError(f"{place}: `kid` {_short(kid)} repeats; a kid must be unique")
        if kty == "oct":
            raise ValueError(f"{place}: a symmetric key, forbidden by CDS Hooks; use EC or RSA")
        if kty not in ("EC", "RSA"):
            raise ValueError(f"{place}: key type {_short(kty)}; only EC and RSA are accepted")
        if any(member in jwk for member in _PRIVATE_MEMBERS):
            raise ValueError(f"{place}: holds private key material; keep only the public key")
        if jwk.get("use", "sig") != "sig":
            raise ValueError(f"{place}: `use` is {_short(jwk['use'])}, not 'sig'")
        alg = jwk.get("alg")
        if alg is not None and (alg not in ACCEPTED_ALGS or ACCEPTED_ALGS[alg][0] != kty):
            raise ValueError(f"{place}: `alg` {_short(alg)} is not accepted for a {kty} key")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                key = JWKRegistry.import_key(jwk)
        except (JoseError, ValueError, TypeError) as exc:
            raise ValueError(f"{place}: not a valid {kty} key ({type(exc).__name__})") from None
        if kty == "EC" and jwk.get("crv") not in ("P-256", "P-384"):
            raise ValueError(f"{place}: curve {_short(jwk.get('crv'))}; use P-384 or P-256")
        if kty == "RSA" and key.raw_value.key_size < MIN_RSA_BITS:
            raise ValueError(f"{place}: a {key.raw_value.key_size}-bit RSA key; use >= 2048")
        keys[kid] = key
    return keys


def _read_jwks_file(path: Path, where: str) -> dict[str, Key]:
    try:
        raw = read_limited(path, MAX_FILE_BYTES, "a JWK Set", "", pipes=False)
        return parse_jwks(parse_json(decode(raw, str(path)), str(path)))
    except InputError as exc:
        raise AuthConfigError(f"{where}: {exc}: check the path (relative to the config)") from None
    except YamlProblem as exc:
        raise AuthConfigError(f"{where}: {exc}: a JWK Set is a JSON file") from None
    except ValueError as exc:
        raise AuthConfigError(f"{where}: {path}: {exc}") from None


def _place(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


_HINTS = {"missing": "add it", "extra_forbidden": "remove it or check its spelling"}


def load_auth_config(path: str | Path) -> AuthConfig:
    """The auth config in a YAML or JSON (by `.json` suffix) file, with its JWK Set files read
    and checked; AuthConfigError names the file, the place and the likely fix."""
    path, name = Path(path), str(path)
    try:
        text = decode(read_limited(path, MAX_FILE_BYTES, "an auth config", "", pipes=False), name)
        json_file = path.suffix == ".json"
        data = parse_json(text, name) if json_file else parse_yaml(text, name, dates=False)
    except InputError as exc:
        raise AuthConfigError(f"{exc}: check the auth config path") from None
    except YamlProblem as exc:
        raise AuthConfigError(f"{exc}: fix the auth config's syntax") from None
    try:
        config = AuthConfig.model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors(include_url=False):
            mark = locate(data, error["loc"])
            where = f"{path}:{mark.line}:{mark.column}" if mark else str(path)
            message = error["msg"].removeprefix("Value error, ")
            hint = _HINTS.get(error["type"])
            lines.append(
                f"{where}: {_place(error['loc'])}: {message}" + (f"; {hint}" if hint else "")
            )
        raise AuthConfigError("\n".join(lines)) from None
    for index, issuer in enumerate(config.issuers):
        if issuer.jwks_file is not None:
            mark = locate(data, ("issuers", index, "jwks_file"))
            where = f"{path}:{mark.line}:{mark.column}" if mark else str(path)
            file = path.parent / issuer.jwks_file
            config._file_keys[issuer.iss] = _read_jwks_file(
                file, f"{where}: issuers[{index}].jwks_file"
            )
    return config


@dataclass
class _IssuerKeys:
    issuer: TrustedIssuer
    keys: dict[str, Key]
    attempted: float | None = None  # when jwks_url was last fetched (or tried)
    loaded: float | None = None  # when it last succeeded
    lock: threading.Lock = field(default_factory=threading.Lock)


def _segment_json(segment: str, what: str) -> dict[str, Any]:
    try:
        value = parse_json(urlsafe_b64decode(segment.encode("ascii")).decode("utf-8"))
    except (ValueError, YamlProblem):  # binascii.Error and UnicodeError are ValueErrors
        value = None
    if not isinstance(value, dict):
        raise AuthError("malformed", f"the {what} is not a base64url-encoded JSON object")
    return value


class JwtVerifier:
    """Verifies CDS Hooks client JWTs against an AuthConfig; safe to share between threads."""

    def __init__(
        self,
        config: AuthConfig,
        *,
        http_timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._timeout = http_timeout
        self._clock = clock
        self._issuers: dict[str, _IssuerKeys] = {}
        for index, issuer in enumerate(config.issuers):
            keys: dict[str, Key] = {}
            if issuer.jwks_file is not None:
                keys = config._file_keys.get(issuer.iss) or _read_jwks_file(
                    issuer.jwks_file, f"issuers[{index}].jwks_file"
                )
            self._issuers[issuer.iss] = _IssuerKeys(issuer, keys)
        self._seen: dict[bytes, float] = {}  # sha256(iss NUL jti) -> forget after
        self._expiry: list[tuple[float, bytes]] = []
        self._seen_lock = threading.Lock()

    def verify(self, authorization: str | None, audience: str) -> dict[str, Any]:
        """The claims of the request's JWT, or AuthError naming the check that failed."""
        if not authorization or not authorization.strip():
            raise AuthError("header-missing", "no Authorization header; send 'Bearer <JWT>'")
        parts = authorization.split()
        if len(parts) != 2 or parts[0].lower() != "bearer":
            raise AuthError("scheme", "the Authorization header is not 'Bearer <JWT>'")
        token = parts[1]
        if len(token) > MAX_TOKEN_CHARS or token.count(".") != 2 or not token.isascii():
            raise AuthError("malformed", "the bearer token is not a compact JWS (three parts)")
        head_part, body_part, _ = token.split(".")
        header = _segment_json(head_part, "JOSE header")
        claims = _segment_json(body_part, "payload")
        if "crit" in header or "b64" in header:
            raise AuthError("malformed", "the JOSE header uses extensions ('crit'/'b64')")
        alg = header.get("alg")
        self._check_alg(alg)
        if header.get("typ") != "JWT":
            raise AuthError("typ", f"the header's typ is {_short(header.get('typ'))}, not 'JWT'")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError("kid", "the header has no 'kid' naming the signing key")
        iss = claims.get("iss")
        if not isinstance(iss, str) or iss not in self._issuers:
            raise AuthError("iss", f"issuer {_short(iss)} is not on the trusted list")
        state = self._issuers[iss]
        jku = header.get("jku")
        if jku is not None and state.issuer.jwks_url is not None and jku != state.issuer.jwks_url:
            raise AuthError("jku", f"the header's jku is not the jwks_url configured for {iss!r}")
        key = self._key(state, kid)
        kty, curve = ACCEPTED_ALGS[alg]
        if key.key_type != kty or (curve is not None and key.get("crv") != curve):
            raise AuthError("alg", f"alg {alg} does not fit key {_short(kid)} of issuer {iss!r}")
        if key.alg is not None and key.alg != alg:
            raise AuthError("alg", f"key {_short(kid)} is for {key.alg}, the token says {alg}")
        try:
            obj = jws.extract_compact(token.encode("ascii"), registry=_REGISTRY)
            valid = jws.validate_compact(obj, key, [alg], registry=_REGISTRY)
        except (JoseError, ValueError):
            valid = False
        if not valid:
            raise AuthError("signature", f"the signature does not verify with key {_short(kid)}")
        self._check_claims(claims, audience)
        return claims

    @staticmethod
    def _check_alg(alg: Any) -> None:
        if not isinstance(alg, str):
            raise AuthError("alg", "the JOSE header has no 'alg'")
        if alg.lower() == "none":  # refused before any key is looked up, as are HS256/384/512
            raise AuthError("alg", "alg 'none' (an unsigned token) is forbidden by CDS Hooks")
        if alg.upper().startswith("HS"):
            raise AuthError("alg", f"alg {_short(alg)} is symmetric, forbidden by CDS Hooks")
        if alg not in ACCEPTED_ALGS:
            raise AuthError("alg", f"alg {_short(alg)} is not one of {', '.join(ACCEPTED_ALGS)}")

    def _key(self, state: _IssuerKeys, kid: str) -> Key:
        url, iss = state.issuer.jwks_url, state.issuer.iss
        problem = ""
        with state.lock:
            now = self._clock()
            stale = state.loaded is None or now - state.loaded >= REFRESH_SECONDS
            wanted = url is not None and (stale or kid not in state.keys)
            if wanted and (state.attempted is None or now - state.attempted >= REFETCH_SECONDS):
                state.attempted = now
                try:
                    state.keys, state.loaded = self._fetch(url), now
                except ValueError as exc:
                    problem = f": {exc}"
                except httpx.HTTPError as exc:
                    problem = f" ({type(exc).__name__})"
            key = state.keys.get(kid)
        if key is not None:
            return key
        if url is not None and state.loaded is None:
            raise AuthError("jwks", f"cannot fetch the JWK Set of {iss!r} from {url}{problem}")
        raise AuthError("kid", f"no key {_short(kid)} in the JWK Set of issuer {iss!r}")

    def _fetch(self, url: str) -> dict[str, Key]:
        trust_env = not _loopback(urlsplit(url).hostname)  # no proxy for a loopback host
        with (
            httpx.Client(
                timeout=self._timeout, follow_redirects=False, trust_env=trust_env
            ) as client,
            client.stream("GET", url, headers={"Accept": "application/json"}) as response,
        ):
            if response.status_code != 200:
                raise ValueError(f"HTTP status {response.status_code}")
            body, deadline = bytearray(), time.monotonic() + self._timeout
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_FILE_BYTES:
                    raise ValueError("the JWK Set is larger than 1 MiB")
                if time.monotonic() > deadline:  # a server dripping bytes would hold the lock
                    raise ValueError(f"the JWK Set took over {self._timeout} s to arrive")
        try:
            return parse_jwks(parse_json(body.decode("utf-8")))
        except (YamlProblem, UnicodeError) as exc:
            raise ValueError(f"not a JSON JWK Set ({type(exc).__name__})") from None

    def _check_claims(self, claims: dict[str, Any], audience: str) -> None:
        aud = claims.get("aud")
        if not (aud == audience or (isinstance(aud, list) and audience in aud)):
            what = "missing" if aud is None else "not this endpoint"
            raise AuthError("aud", f"aud is {what}; it must be {audience!r}")
        now, skew = self._clock(), self.config.clock_skew_seconds
        exp, iat = _time(claims, "exp"), _time(claims, "iat")
        if now > exp + skew:
            raise AuthError("exp", f"the token expired {now - exp:.0f} s ago")
        nbf = claims.get("nbf")
        if nbf is not None and now < _time(claims, "nbf") - skew:
            raise AuthError("nbf", "the token is not valid yet (nbf is in the future)")
        if iat > now + skew:
            raise AuthError("iat", f"iat is {iat - now:.0f} s in the future; check the clocks")
        max_age = self.config.max_token_age_seconds
        if now - iat > max_age + skew:
            raise AuthError("iat", f"the token was issued {now - iat:.0f} s ago (max {max_age} s)")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise AuthError("jti", "the token has no 'jti' nonce (needed against replay)")
        self._remember(claims["iss"], jti, min(exp, iat + max_age) + skew, now)

    def _remember(self, iss: str, jti: str, until: float, now: float) -> None:
        digest = hashlib.sha256(f"{iss}\0{jti}".encode()).digest()
        with self._seen_lock:
            while self._expiry and self._expiry[0][0] < now:
                when, old = heapq.heappop(self._expiry)
                if self._seen.get(old) == when:
                    del self._seen[old]
            if digest in self._seen:
                raise AuthError("replay", "this jti was already used by the issuer: a replay")
            if len(self._seen) >= self.config.replay_cache_size:
                raise AuthError("replay-cache-full", "too many recent tokens to remember; retry")
            self._seen[digest] = until
            heapq.heappush(self._expiry, (until, digest))


def _time(claims: dict[str, Any], name: str) -> float:
    value = claims.get(name)
    if value is None:
        raise AuthError(name, f"the token has no '{name}' claim (CDS Hooks requires it)")
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e11:
        raise AuthError(name, f"the '{name}' claim is not a number of seconds since the epoch")
    return float(value)
