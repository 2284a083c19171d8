"""The services a pack offers (one per hook) and how a hook call is answered.

Per pack: `{pack}-order-select` and `{pack}-order-sign` (fired by a draft MedicationRequest for
the pack's subject drug) and `{pack}-patient-view` (for a patient with an active
MedicationRequest or MedicationStatement for it). Each asks the client to prefetch the patient,
their active conditions, and their active MedicationRequests and MedicationStatements.

A call is answered in these steps: the context is checked for what the hook needs; every prefetch
key the service asks for must be present (its value may be null: no data) or fetchable from
`fhirServer`, else 412; the resources are mapped onto a scenario (engine.fhir); a call known not
to concern the subject drug gets no cards, and an order whose drug the pack cannot read gets one
card saying it could not tell; the scenario is evaluated and the result becomes cards.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..errors import ScenarioError
from ..fhir.mapping import map_patient, resources
from ..knowledge_base import KnowledgeBase
from ..pipeline import run
from .cards import cards_for, unknown_order_card
from .protocol import Card, HookRequest, ServiceDescription

HOOKS = ("order-select", "order-sign", "patient-view")
PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": (
        "Condition?patient={{context.patientId}}&clinical-status=active,recurrence,relapse"
    ),
    "medicationRequests": "MedicationRequest?patient={{context.patientId}}&status=active,on-hold",
    "medicationStatements": (
        "MedicationStatement?patient={{context.patientId}}&status=active,intended"
    ),
}


class HookProblem(Exception):
    """A request the service cannot answer: (code, diagnostics, expression) issues and a status."""

    def __init__(self, status: int, issues: list[tuple[str, str, str | None]]) -> None:
        super().__init__("; ".join(text for _, text, _ in issues))
        self.status = status
        self.issues = issues


@dataclass(frozen=True)
class Service:
    """One CDS service: a pack answering one hook."""

    kb: KnowledgeBase
    hook: str

    @property
    def id(self) -> str:
        return f"{self.kb.id}-{self.hook}"

    def describe(self) -> ServiceDescription:
        title = self.kb.manifest.title
        drug = self.kb.manifest.subject or "the subject drug"
        action = "selected" if self.hook == "order-select" else "signed"
        when = (
            f"when a patient with an active order or statement for {drug} is opened"
            if self.hook == "patient-view"
            else f"when a draft order for {drug} is {action}"
        )
        return ServiceDescription(
            hook=self.hook,
            id=self.id,
            title=f"{title}: what the source says ({self.hook})",
            description=(
                f"Called {when}: the statements of the {title} that apply to the patient, each "
                "with its caveats and the source's words, and what the pack could not decide. "
                f"Pack {self.kb.id} {self.kb.version}. Decision support from one source "
                "document; not medical advice."
            ),
            prefetch=dict(PREFETCH),
        )


def services(kbs: list[KnowledgeBase]) -> dict[str, Service]:
    out: dict[str, Service] = {}
    for kb in kbs:
        for hook in HOOKS:
            service = Service(kb, hook)
            out[service.id] = service
    return out


class HookContext(NamedTuple):
    """What a call's context says, checked."""

    patient: str
    selections: tuple[str, ...]
    drafts: Any  # the draftOrders Bundle (None for patient-view)


def check_context(service: Service, request: HookRequest) -> HookContext:
    """The call's context, or HookProblem naming each gap."""
    issues: list[tuple[str, str, str | None]] = []
    if request.hook != service.hook:
        issues.append(
            ("invalid", f"this service answers {service.hook}, not {request.hook[:100]!r}", "hook")
        )
    ctx = request.context
    patient = ctx.get("patientId")
    if not isinstance(patient, str) or not 0 < len(patient) <= 200:
        issues.append(
            (
                "required",
                "context.patientId: the patient's FHIR id (text) is needed",
                "context.patientId",
            )
        )
    selections: tuple[str, ...] = ()
    drafts = None
    if service.hook != "patient-view":
        drafts = ctx.get("draftOrders")
        if not isinstance(drafts, dict) or drafts.get("resourceType") != "Bundle":
            issues.append(
                (
                    "required",
                    "context.draftOrders: a Bundle of the draft orders is needed",
                    "context.draftOrders",
                )
            )
        if service.hook == "order-select":
            chosen = ctx.get("selections")
            if (
                not isinstance(chosen, list)
                or not all(isinstance(s, str) and 0 < len(s) <= 300 for s in chosen)
                or len(chosen) > 1000
            ):
                issues.append(
                    (
                        "required",
                        "context.selections: a list of the selected orders' "
                        "references (e.g. MedicationRequest/103) is needed",
                        "context.selections",
                    )
                )
            else:
                selections = tuple(chosen)
    if issues:
        raise HookProblem(400, issues)
    return HookContext(patient, selections, drafts)  # type: ignore[arg-type]


def missing_prefetch(request: HookRequest) -> list[str]:
    """The prefetch keys the service asks for that the request does not carry (null counts as
    carried: it means no data). A key whose value is an OperationOutcome is not carried: the
    client says it could not fetch it (the spec's way), which is not "no data"."""
    given = request.prefetch or {}
    return [key for key in PREFETCH if key not in given or _failed(given[key])]


def _failed(value: Any) -> bool:
    return isinstance(value, dict) and value.get("resourceType") == "OperationOutcome"


def _draft_refs(drafts: Any) -> set[str]:
    refs = set()
    for item in resources(drafts, "context.draftOrders"):
        res = getattr(item, "resource", None)
        if res is not None:  # named as the mapping names it, an order without id too
            refs.add(f"{res['resourceType']}/{res.get('id')}")
    return refs


def answer(
    service: Service, context: HookContext, prefetch: dict[str, Any], *, as_of: dt.date
) -> list[Card]:
    """The cards for a hook call whose context is checked and whose prefetch data is complete."""
    patient, selections, drafts = context
    given = prefetch.get("patient")
    given_id = given.get("id") if isinstance(given, dict) else None
    if isinstance(given_id, str) and given.get("resourceType") == "Patient" and given_id != patient:
        raise HookProblem(
            400,
            [
                (
                    "invalid",
                    f"prefetch.patient is Patient/{given['id'][:100]}, not the context's "
                    f"patientId {patient[:100]!r}: the data is about someone else",
                    "prefetch.patient",
                )
            ],
        )
    mapping = map_patient(
        prefetch,
        service.kb,
        as_of=as_of,
        patient_id=patient,
        selections=selections,
        draft_orders=drafts,
    )
    concerned = set(mapping.subject_orders)
    unknown: set[str] = set()
    if service.hook != "patient-view":
        drafted = _draft_refs(drafts)
        if service.hook == "order-select":
            drafted &= set(selections)
        concerned &= drafted
        unknown = drafted & set(mapping.unrecognised_orders)
    if not concerned:
        if unknown:  # not recognised is not "another drug": say it could not tell
            return [unknown_order_card(service.kb, sorted(unknown))]
        return []  # the call is not about the subject drug
    try:
        result = run(service.kb, mapping.scenario)
    except ScenarioError as exc:
        raise HookProblem(
            400,
            [
                ("processing", f"the patient's data could not be evaluated: {p}", None)
                for p in exc.problems
            ],
        ) from None
    return cards_for(service.kb, result, mapping)
