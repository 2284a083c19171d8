"""Fetching what a client did not prefetch, from its FHIR server, with its bearer token.

Each missing prefetch key's template is filled from the hook's context (only root-level text
fields, URL-encoded) and read with httpx under a timeout. A search's Bundle is followed through
its `next` links up to MAX_PAGES pages; each response is read up to MAX_RESPONSE bytes. A failure
(a timeout, a refused connection, a status other than 200, a body that is not JSON) is a
`FetchError` naming the key and what happened, never the token: the service answers 412 with it,
as the spec says.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urljoin

import httpx
import orjson

MAX_PAGES = 10
MAX_RESPONSE = 8 * 1024 * 1024
TIMEOUT = 5.0
_TOKEN = re.compile(r"\{\{context\.([A-Za-z0-9_]+)\}\}")


class FetchError(Exception):
    """A prefetch key that could not be read from the FHIR server."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


def fill(template: str, context: dict[str, Any]) -> str | None:
    """The template with its {{context.x}} tokens replaced, or None when a token's field is not
    a text in the context."""
    missing = False

    def token(match: re.Match[str]) -> str:
        nonlocal missing
        value = context.get(match.group(1))
        if not isinstance(value, str) or not value or value in (".", ".."):
            # "." or ".." would be a dot segment of the path: Patient/.. reads the server's base
            missing = True
            return ""
        return quote(value, safe="")

    filled = _TOKEN.sub(token, template)
    return None if missing else filled


async def _get(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], key: str, read: bool = False
) -> Any:
    try:
        async with client.stream("GET", url, headers=headers) as response:
            if response.status_code == 404 and read:
                return None  # a read of a resource that is not there: no data (a search that
                # is not found is a wrong base URL or an unsupported search: an error)
            if response.status_code != 200:
                raise FetchError(key, f"the FHIR server answered HTTP {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_RESPONSE:
                    raise FetchError(key, f"the FHIR server's answer is over {MAX_RESPONSE} bytes")
    except httpx.TimeoutException:
        raise FetchError(key, "the FHIR server did not answer in time") from None
    except httpx.HTTPError as exc:
        raise FetchError(
            key, f"the FHIR server could not be reached ({type(exc).__name__})"
        ) from None
    try:
        return orjson.loads(bytes(body))
    except orjson.JSONDecodeError:
        raise FetchError(key, "the FHIR server's answer is not JSON") from None


def _unread(key: str) -> dict[str, Any]:
    """A Bundle entry saying that the rest of a search was not read."""
    return {
        "resource": {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": "warning",
                    "code": "too-costly",
                    "diagnostics": f"the FHIR server had more than {MAX_PAGES} pages for "
                    f"{key!r}; the pages after the {MAX_PAGES}th were not read",
                }
            ],
        }
    }


async def fetch(
    client: httpx.AsyncClient,
    server: str,
    token: str | None,
    templates: dict[str, str],
    context: dict[str, Any],
) -> dict[str, Any]:
    """Each template's data from the server: a resource, a searchset Bundle (pages joined), or
    None for a read that found nothing."""
    base = server.rstrip("/") + "/"
    headers = {"Accept": "application/fhir+json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    out: dict[str, Any] = {}
    for key, template in templates.items():
        path = fill(template, context)
        if path is None:
            raise FetchError(key, f"the context has no usable value for the template {template!r}")
        data = await _get(client, urljoin(base, path), headers, key, read="?" not in path)
        pages = 1
        while isinstance(data, dict) and data.get("resourceType") == "Bundle":
            nxt = next(
                (
                    link.get("url")
                    for link in data.get("link") or []
                    if isinstance(link, dict) and link.get("relation") == "next"
                ),
                None,
            )
            if not isinstance(nxt, str):
                break
            if pages >= MAX_PAGES:  # said, not passed over: the mapping lists what it says
                data = {**data, "entry": [*(data.get("entry") or []), _unread(key)]}
                break
            if not nxt.startswith(base):
                raise FetchError(key, "a next link leads off the FHIR server; not followed")
            page = await _get(client, nxt, headers, key)
            pages += 1
            if not isinstance(page, dict):
                raise FetchError(key, f"page {pages} of the search is not a Bundle")
            entries = list(data.get("entry") or []) + list(page.get("entry") or [])
            data = {**page, "entry": entries}
        out[key] = data
    return out
