"""The card preview at `/`: one self-contained page (engine/service/preview.html) where a reviewer
types or picks a scenario and sees the cards the service answers for it, next to the JSON.

The page is static but for one JSON block the service fills in when it serves it: the date ages
and durations are computed on (`--as-of`, else today in UTC), and each pack's id, title, version
and subject drug (name and codes), from which the page writes the order of the subject drug. Its
script builds a real CDS Hooks request from the form (FHIR R4 prefetch: a Patient, Conditions,
MedicationRequests) and calls this service's own endpoints, `GET /cds-services` and `POST
/cds-services/{id}`; nothing else.

The page carries a Content-Security-Policy that allows its own inline style and script (by their
SHA-256 hashes, not 'unsafe-inline') and connections to this origin only: no other script, style,
image, font, frame or connection can load, whatever a card holds (the script also builds every
card with text nodes, never parsing text as HTML).

With `--auth jwks` every CDS endpoint needs a JWT signed by a trusted client, which a page in a
browser cannot make: `/` then serves a short notice saying so, with no form and no script.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
from functools import lru_cache
from importlib import resources
from typing import Any

from ..fhir.elements import SYSTEM_URIS
from ..knowledge_base import KnowledgeBase

PAGE = "preview.html"
DATA_MARK = "/*CAVEAT-PREVIEW-DATA*/{}"  # where the service writes the page's data
# the page's own executable script and stylesheet (the data and examples blocks are
# <script type="application/json">, which a browser never runs)
_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)
_STYLE = re.compile(r"<style>(.*?)</style>", re.S)


def _sha256(text: str) -> str:
    digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    return f"'sha256-{digest}'"


def csp(styles: list[str], scripts: list[str]) -> str:
    """A policy that lets nothing load but the page's own inline style and script (by hash),
    and lets the script connect to this origin only."""
    parts = [
        "default-src 'none'",
        f"script-src {' '.join(_sha256(s) for s in scripts)}" if scripts else "script-src 'none'",
        f"style-src {' '.join(_sha256(s) for s in styles)}" if styles else "style-src 'none'",
        "connect-src 'self'",
        "img-src data:",  # the empty favicon (else the browser asks for /favicon.ico)
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
    return "; ".join(parts)


@lru_cache(maxsize=1)
def template() -> tuple[str, str]:
    """The page's HTML, with the data mark, and its Content-Security-Policy."""
    page = resources.files(__package__).joinpath(PAGE).read_text(encoding="utf-8")
    if page.count(DATA_MARK) != 1:
        raise RuntimeError(f"{PAGE} must hold the data mark {DATA_MARK!r} once")
    return page, csp(_STYLE.findall(page), _SCRIPT.findall(page))


def _script_json(data: Any) -> str:
    """JSON that cannot end the <script> element it is written in, nor open a comment in it."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def page_data(packs: list[KnowledgeBase], as_of: dt.date | None) -> dict[str, Any]:
    """What the page needs to build a request: the day it is read as of, and each pack's drug."""
    out = []
    for kb in packs:
        subject = kb.manifest.subject
        out.append(
            {
                "id": kb.id,
                "title": kb.manifest.title,
                "version": kb.version,
                "released": kb.ref.released,
                "drug": kb.vocabulary.label(subject) if subject else None,
                "codings": [
                    {"system": SYSTEM_URIS[c.system], "code": c.code}
                    for c in kb.manifest.subject_codes
                    if c.system in SYSTEM_URIS
                ],
            }
        )
    today = as_of or dt.datetime.now(dt.UTC).date()
    return {"asOf": today.isoformat(), "asOfFixed": as_of is not None, "packs": out}


def preview_page(packs: list[KnowledgeBase], as_of: dt.date | None) -> tuple[bytes, str]:
    """The page (UTF-8) and its Content-Security-Policy."""
    page, policy = template()
    return page.replace(DATA_MARK, _script_json(page_data(packs, as_of))).encode(), policy


NOTICE_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;"
    "color:#1f2328}code{background:#f6f8fa;padding:0 .25em;border-radius:4px}"
)
NOTICE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>Caveat CDS Hooks service: no card preview here</title>
<style>{NOTICE_STYLE}</style>
</head>
<body>
<h1>No card preview on this service</h1>
<p>This service runs with JWT authentication (<code>--auth jwks</code>): every CDS endpoint
answers only requests signed by a trusted CDS client, and a page in a browser cannot sign them.
So the card preview is not offered here, rather than offered and failing.</p>
<p>To preview cards, run the service on this machine without authentication
(<code>caveat serve</code>, which listens on 127.0.0.1) and open
<code>http://127.0.0.1:8080/</code>.</p>
<p>Decision support from one source document; not medical advice.</p>
</body>
</html>
"""


def notice_page() -> tuple[bytes, str]:
    """The page `/` serves under --auth jwks, and its Content-Security-Policy (no script)."""
    return NOTICE.encode(), csp([NOTICE_STYLE], [])


def headers(policy: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",  # it holds the day it is read as of
        "X-Frame-Options": "DENY",
    }
