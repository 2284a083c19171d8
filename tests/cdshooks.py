"""Checkers of CDS Hooks 2.0 responses (https://cds-hooks.hl7.org/2.0/), reusable by any test
that calls the service: `check_cards` for a hook's answer, `check_discovery` for GET /cds-services.

Each asserts the spec's rules (Card Attributes, Source, Suggestion, Action, Link, Coding, and
"JSON elements SHALL NOT be null, empty strings, arrays or objects") and, unless `ours=False`,
the rules this service keeps on top of them: never a `critical` card, every card with a uuid
(distinct within the answer) and a detail. A failure names the card and the attribute.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

INDICATORS = ("info", "warning", "critical")
SELECTION = ("at-most-one", "any")
ACTION_TYPES = ("create", "update", "delete")
LINK_TYPES = ("absolute", "smart")
SUMMARY_LIMIT = 140  # "<140-character summary"


def _absolute(url: Any) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _no_empty(value: Any, where: str) -> None:
    """The spec's rule: no attribute is null, "", [] or {} (an OPTIONAL one is omitted)."""
    assert value is not None, f"{where} is null"
    assert value not in ("", [], {}), f"{where} is empty ({value!r}): omit it instead"
    if isinstance(value, dict):
        for key, item in value.items():
            _no_empty(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _no_empty(item, f"{where}[{i}]")


def _text(obj: dict[str, Any], key: str, where: str, required: bool = True) -> None:
    if key not in obj:
        assert not required, f"{where}.{key} is missing"
        return
    assert isinstance(obj[key], str) and obj[key].strip(), f"{where}.{key} is not a text"


def check_coding(coding: Any, where: str, display: bool = False) -> None:
    """A CDS Hooks Coding: code and system (both REQUIRED), display when `display`."""
    assert isinstance(coding, dict), f"{where} is not a Coding object"
    _text(coding, "code", where)
    _text(coding, "system", where)
    _text(coding, "display", where, required=display)


def _check_action(action: Any, where: str) -> None:
    assert isinstance(action, dict), f"{where} is not an object"
    assert action.get("type") in ACTION_TYPES, f"{where}.type is {action.get('type')!r}"
    _text(action, "description", where)
    if action["type"] == "create":
        assert isinstance(action.get("resource"), dict), f"{where}: a create needs a resource"
    if "resource" in action:
        assert isinstance(action["resource"], dict), f"{where}.resource is not a FHIR resource"
        _text(action["resource"], "resourceType", f"{where}.resource")
    _text(action, "resourceId", where, required=False)


def _check_source(source: Any, where: str) -> None:
    assert isinstance(source, dict), f"{where} is not an object"
    _text(source, "label", where)
    for key in ("url", "icon"):
        if key in source:
            assert _absolute(source[key]), f"{where}.{key} is not an absolute URL"
    if "topic" in source:
        check_coding(source["topic"], f"{where}.topic")


def check_card(card: Any, where: str = "card", ours: bool = True) -> None:
    """One card, by the spec's Card Attributes (and this service's rules when `ours`)."""
    assert isinstance(card, dict), f"{where} is not an object"
    _no_empty(card, where)
    summary = card.get("summary")
    assert isinstance(summary, str) and summary.strip(), f"{where}.summary is not a text"
    assert len(summary) < SUMMARY_LIMIT, f"{where}.summary has {len(summary)} characters"
    assert "\n" not in summary, f"{where}.summary is not one line"
    assert card.get("indicator") in INDICATORS, f"{where}.indicator is {card.get('indicator')!r}"
    assert "source" in card, f"{where}.source is missing"
    _check_source(card["source"], f"{where}.source")
    _text(card, "detail", where, required=ours)
    _text(card, "uuid", where, required=ours)
    if "suggestions" in card:
        suggestions = card["suggestions"]
        assert isinstance(suggestions, list), f"{where}.suggestions is not an array"
        assert card.get("selectionBehavior") in SELECTION, (
            f"{where}: suggestions need selectionBehavior at-most-one or any, not "
            f"{card.get('selectionBehavior')!r}"
        )
        for i, suggestion in enumerate(suggestions):
            at = f"{where}.suggestions[{i}]"
            assert isinstance(suggestion, dict), f"{at} is not an object"
            _text(suggestion, "label", at)
            _text(suggestion, "uuid", at, required=False)
            if "isRecommended" in suggestion:
                assert isinstance(suggestion["isRecommended"], bool), f"{at}.isRecommended"
            for j, action in enumerate(suggestion.get("actions", [])):
                _check_action(action, f"{at}.actions[{j}]")
    elif "selectionBehavior" in card:
        assert card["selectionBehavior"] in SELECTION, f"{where}.selectionBehavior"
    if "overrideReasons" in card:
        reasons = card["overrideReasons"]
        assert isinstance(reasons, list), f"{where}.overrideReasons is not an array"
        for i, reason in enumerate(reasons):
            check_coding(reason, f"{where}.overrideReasons[{i}]", display=True)
    if "links" in card:
        assert isinstance(card["links"], list), f"{where}.links is not an array"
        for i, link in enumerate(card["links"]):
            at = f"{where}.links[{i}]"
            assert isinstance(link, dict), f"{at} is not an object"
            _text(link, "label", at)
            assert link.get("type") in LINK_TYPES, f"{at}.type is {link.get('type')!r}"
            assert isinstance(link.get("url"), str), f"{at}.url is missing"
            if link["type"] == "absolute":
                assert _absolute(link["url"]), f"{at}.url is not absolute"
                assert "appContext" not in link, f"{at}: appContext is only for smart links"
    if ours:
        assert card["indicator"] != "critical", f"{where}: this service never sends critical"


def check_cards(response: Any, ours: bool = True) -> list[dict[str, Any]]:
    """A hook's answer: an object with a `cards` array (and optionally `systemActions`); every
    card checked. Returns the cards."""
    assert isinstance(response, dict), "the answer is not a JSON object"
    unknown = set(response) - {"cards", "systemActions", "extension"}
    assert not unknown, f"the answer has fields the spec does not define: {sorted(unknown)}"
    cards = response.get("cards")
    assert isinstance(cards, list), "the answer has no cards array"
    for i, card in enumerate(cards):
        check_card(card, f"cards[{i}]", ours=ours)
    if "systemActions" in response:
        actions = response["systemActions"]
        assert isinstance(actions, list), "systemActions is not an array"
        for i, action in enumerate(actions):
            _check_action(action, f"systemActions[{i}]")
    if ours:
        uuids = [c["uuid"] for c in cards]
        assert len(set(uuids)) == len(uuids), f"card uuids repeat: {uuids}"
    return cards


def check_discovery(response: Any) -> list[dict[str, Any]]:
    """GET /cds-services: an object with a `services` array, each service with hook, id and
    description (title, prefetch and usageRequirements as the spec types them), ids distinct.
    Returns the services."""
    assert isinstance(response, dict), "discovery is not a JSON object"
    services = response.get("services")
    assert isinstance(services, list), "discovery has no services array"
    for i, service in enumerate(services):
        where = f"services[{i}]"
        assert isinstance(service, dict), f"{where} is not an object"
        _no_empty(service, where)
        for key in ("hook", "id", "description"):
            _text(service, key, where)
        for key in ("title", "usageRequirements"):
            _text(service, key, where, required=False)
        assert "/" not in service["id"], f"{where}.id is not one path segment"
        if "prefetch" in service:
            prefetch = service["prefetch"]
            assert isinstance(prefetch, dict), f"{where}.prefetch is not an object"
            for key, template in prefetch.items():
                assert isinstance(template, str) and template, f"{where}.prefetch.{key}"
                assert not template.startswith(("/", "http:", "https:")), (
                    f"{where}.prefetch.{key} is not a relative FHIR query"
                )
                assert template.count("{{") == template.count("}}"), (
                    f"{where}.prefetch.{key}: unbalanced prefetch token"
                )
    ids = [(s["id"], s["hook"]) for s in services]
    assert len(set(ids)) == len(ids), f"services repeat: {ids}"
    return services
