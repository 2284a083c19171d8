"""The card preview at `/` of `caveat serve`, over HTTP: one self-contained page with a
Content-Security-Policy that lets nothing load but its own inline style and script and lets it
connect to the service only; the example scenarios it offers are the case library's; under
`--auth jwks` it is a notice, with no form and no script. What the page does in a browser is
tests/test_preview_browser.py."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import CASES
from joserfc.jwk import ECKey
from servers import AS_OF, Served, serve

from engine import load_knowledge_base
from engine.fhir.elements import SYSTEM_URIS
from engine.service import preview

# URLs the page's script writes into FHIR resources as code system identifiers (never fetched)
IDENTIFIERS = {
    *SYSTEM_URIS.values(),
    "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy",
    "http://terminology.hl7.org/CodeSystem/condition-clinical",
    "http://terminology.hl7.org/CodeSystem/condition-ver-status",
    "http://unitsofmeasure.org",
}
URL_ATTRIBUTES = {"src", "href", "srcset", "action", "formaction", "poster", "data", "background"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("preview")) as running:
        yield running


@pytest.fixture(scope="module")
def page(served: Served) -> httpx.Response:
    return httpx.get(f"{served.url}/", timeout=30)


class Parts(HTMLParser):
    """The page's tags with their attributes, and the text of each script and style element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.blocks: list[tuple[str, dict[str, str | None], str]] = []
        self._open: tuple[str, dict[str, str | None]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in ("script", "style"):
            self._open = (tag, dict(attrs))

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self.blocks.append((*self._open, data))
            self._open = None

    def handle_endtag(self, tag: str) -> None:
        if self._open is not None and self._open[0] == tag:  # an empty element
            self.blocks.append((*self._open, ""))
        self._open = None


def parts(text: str) -> Parts:
    parsed = Parts()
    parsed.feed(text)
    return parsed


def directives(policy: str) -> dict[str, list[str]]:
    out = {}
    for part in policy.split(";"):
        name, *values = part.split()
        out[name] = values
    return out


def sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def data_block(text: str, block_id: str) -> Any:
    (found,) = [b for t, a, b in parts(text).blocks if t == "script" and a.get("id") == block_id]
    return json.loads(found)


def test_the_page_is_html_with_a_policy_that_allows_only_itself(page: httpx.Response) -> None:
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    policy = directives(page.headers["content-security-policy"])
    assert policy["default-src"] == ["'none'"]
    assert policy["connect-src"] == ["'self'"]  # the service's own endpoints, nothing else
    assert policy["img-src"] == ["data:"]
    assert policy["form-action"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    for name in ("font-src", "frame-src", "object-src", "media-src", "worker-src"):
        assert name not in policy  # default-src 'none' holds
    blocks = parts(page.text).blocks
    runs = [body for tag, attrs, body in blocks if tag == "script" and "type" not in attrs]
    data = [attrs.get("type") for tag, attrs, _ in blocks if tag == "script" and "type" in attrs]
    styles = [body for tag, _, body in blocks if tag == "style"]
    assert len(runs) == 1 and len(styles) == 1
    assert data == ["application/json", "application/json"]  # never run by a browser
    # the page's own script and style, by hash: no 'unsafe-inline', no other source
    assert policy["script-src"] == [sha256(runs[0])]
    assert policy["style-src"] == [sha256(styles[0])]
    assert "unsafe" not in page.headers["content-security-policy"]


def test_the_page_references_no_asset_and_no_address_but_identifiers(
    page: httpx.Response,
) -> None:
    parsed = parts(page.text)
    for tag, attrs in parsed.tags:
        for name, value in attrs.items():
            if name in URL_ATTRIBUTES and value is not None:
                assert value.startswith("data:"), f"<{tag} {name}={value!r}> loads something"
        assert not (tag == "link" and attrs.get("rel") == "stylesheet"), "an external stylesheet"
        assert "style" not in attrs, f"<{tag}> has a style attribute (the policy forbids it)"
    for tag, _, body in parsed.blocks:
        if tag == "style":
            assert "url(" not in body and "@import" not in body
    # no address at all but the code systems the script writes into FHIR resources
    addresses = set(re.findall(r"https?://[^\s\"'<>)]+", page.text))
    assert addresses <= IDENTIFIERS, addresses - IDENTIFIERS
    script = next(b for t, a, b in parsed.blocks if t == "script" and "type" not in a)
    # the script calls relative paths of this service only, and never parses text as HTML
    assert re.findall(r"fetch\(([^,)]+)", script) == ['"cds-services"', "path"]
    assert 'var path = "cds-services/" + encodeURIComponent(' in script
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script


def test_the_page_knows_the_day_and_the_drug_of_each_pack(page: httpx.Response) -> None:
    data = data_block(page.text, "caveat-data")
    assert data["asOf"] == AS_OF and data["asOfFixed"] is True
    (pack,) = data["packs"]
    kb = load_knowledge_base()
    assert pack["id"] == kb.id and pack["version"] == kb.version
    assert pack["drug"] == "clonazepam"
    assert {"system": SYSTEM_URIS["RxNorm"], "code": "2598"} in pack["codings"]


def test_without_as_of_the_page_says_today_in_utc() -> None:
    data = preview.page_data([load_knowledge_base()], None)
    assert data["asOf"] == dt.datetime.now(dt.UTC).date().isoformat()
    assert data["asOfFixed"] is False


def test_the_data_written_into_the_page_cannot_end_its_script_element() -> None:
    hostile = {"title": "</script><script>alert(1)</script><!--", "and": "&"}
    written = preview._script_json(hostile)
    assert "<" not in written and ">" not in written and "&" not in written
    assert json.loads(written) == hostile


def _cases() -> dict[str, dict[str, Any]]:
    out = {}
    for path in CASES.glob("*.yaml"):
        loaded = yaml.safe_load(path.read_text())
        for case in loaded if isinstance(loaded, list) else [loaded]:
            out[case["id"]] = case
    return out


def test_the_examples_are_cases_of_the_library_a_fhir_request_can_carry(
    page: httpx.Response,
) -> None:
    examples = data_block(page.text, "caveat-examples")
    assert len(examples) >= 5
    cases = _cases()
    for example in examples:
        case = cases[example["case"]]
        scenario = example["scenario"]
        for key in ("patient", "conditions", "medications", "therapy"):
            assert scenario.get(key) == case.get(key), (example["case"], key)
        assert not case.get("expect", {}).get("error")
        # what the form can send in FHIR: whole years of age, intent acute or long-term, years
        therapy = scenario.get("therapy", {})
        assert set(therapy) <= {"intent", "duration_years"}
        assert therapy.get("intent") in (None, "acute", "long-term")
        age = scenario.get("patient", {}).get("age")
        assert age is None or isinstance(age, int)
    labels = [e["label"] for e in examples]
    assert len(set(labels)) == len(labels)


def test_the_page_is_packaged_beside_the_service() -> None:
    page, policy = preview.template()
    assert page.count(preview.DATA_MARK) == 1 and "script-src 'sha256-" in policy
    assert Path(preview.__file__).with_name("preview.html").is_file()


def test_under_jwt_authentication_the_page_says_it_cannot_work(tmp_path: Path) -> None:
    key = ECKey.generate_key("P-384", {"kid": "k1"})
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    config = tmp_path / "auth.yaml"
    config.write_text("issuers:\n  - iss: https://ehr.example.org/\n    jwks_file: jwks.json\n")
    with serve(tmp_path, "--auth", "jwks", "--auth-config", str(config)) as running:
        answer = httpx.get(f"{running.url}/", timeout=30)
        discovery = httpx.get(f"{running.url}/cds-services", timeout=30)
    assert discovery.status_code == 401  # what the page would have met
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    policy = directives(answer.headers["content-security-policy"])
    assert policy["script-src"] == ["'none'"] and policy["connect-src"] == ["'self'"]
    parsed = parts(answer.text)
    assert not [t for t, _ in parsed.tags if t in ("script", "form", "input", "textarea")]
    text = " ".join(answer.text.split())
    assert "No card preview on this service" in text
    assert "a page in a browser cannot sign them" in text
