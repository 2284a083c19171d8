"""Code lists: published lists of codes that a pack binds to its concepts, with their source.

A concept's own `codes` bind a handful of codes each; an order from an EHR names a drug by one of
hundreds of product codes ("clonazePAM 0.5 MG Oral Tablet" is RxNorm 197527, not the ingredient
2598). A code list carries such codes as data, each with the concept it means, and cites where the
list was published and when: a list without a cited source is an error (`caveat rules check`),
because a binding nobody can trace is a fact the pack cannot stand behind.

The manifest's `subject_codes` name the drug the pack is about by code (RxNorm ingredient, ATC), so
that a service can tell which orders concern it; each must be bound to the subject concept.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from .scenario import CodeSystem
from .vocabulary import ConceptId, code_key
from .yamlfile import key_mark, locate

if TYPE_CHECKING:
    from .pack import PackContents, PackReader

Code = Annotated[str, StringConstraints(min_length=1, max_length=40)]


class CodeListSource(BaseModel):
    """Where a code list was published: enough for a reviewer to find the same list again."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    title: str = Field(description="the published list's title (a ValueSet's title, say)")
    publisher: str | None = Field(default=None, description="who published it")
    url: str | None = Field(default=None, description="its canonical URL")
    version: str | None = Field(default=None, description="its version, if it has one")
    date: dt.date | None = Field(default=None, description="the date of the list (or expansion)")
    retrieved_from: str | None = Field(
        default=None, description="where this copy was read: a URL pinned to a revision"
    )
    licence: str | None = Field(default=None, description="the licence the list is under")


class CodeListEntry(BaseModel):
    """One code of a list and the concept it means."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    code: Code = Field(description="the code, as the code system writes it")
    display: str = Field(description="the code's display, as the list gives it")
    concept: ConceptId = Field(description="the pack's concept the code means")
    note: str | None = Field(default=None, description="a remark, e.g. 'combination product'")


class CodeList(BaseModel):
    """A code-list file of a pack (listed under `code_lists` in pack.yaml)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=80)]
    title: str = Field(description="what the list holds")
    system: CodeSystem = Field(description="the code system of every code in it")
    source: CodeListSource | None = Field(
        default=None, description="where it was published; required (`rules check` says so)"
    )
    codes: list[CodeListEntry] = Field(min_length=1, description="the codes, each with its concept")


class SubjectCode(BaseModel):
    """A code of the pack's subject drug (RxNorm ingredient, ATC)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    system: CodeSystem = Field(description="RxNorm or ATC, usually")
    code: Code = Field(description="the code")


def read_code_list(reader: PackReader, path: Path) -> None:
    """Read one code-list file into the pack, reporting each problem where it is."""
    data = reader.read(path)
    if data is None:
        return
    name = reader.rel(path)
    found: CodeList | None = reader.validate(CodeList, data, name)
    if found is None:
        return
    if any(c.id == found.id for c in reader.pack.code_lists):
        reader.problem(name, locate(data, ("id",)), f"duplicate code list id {found.id!r}")
        return
    source = found.source
    cite = "cite where the list was published: source: {title, url, date}"
    if source is None:
        reader.problem(
            name, key_mark(data, "codes"), f"code list {found.id!r} has no source; {cite}", "source"
        )
    elif not (source.url or source.retrieved_from) or source.date is None:
        missing = "a url" if not (source.url or source.retrieved_from) else "a date"
        reader.problem(
            name,
            locate(data, ("source",)),
            f"source of {found.id!r} lacks {missing}; {cite}",
            "source",
        )
    known = {c.id for c in reader.pack.concepts}
    own = {code_key(code.system, code.code): c.id for c in reader.pack.concepts for code in c.codes}
    seen: set[str] = set()
    for i, entry in enumerate(found.codes):
        where = locate(data, ("codes", i))
        if known and entry.concept not in known:  # (no concepts: their file said why)
            reader.problem(name, where, f"codes[{i}]: unknown concept {entry.concept!r}")
        if entry.code in seen:
            reader.problem(name, where, f"codes[{i}]: code {entry.code} is listed twice")
        seen.add(entry.code)
        bound = own.get(code_key(found.system, entry.code))
        if bound is not None and bound != entry.concept:
            reader.problem(
                name,
                where,
                f"codes[{i}]: {found.system} {entry.code} is bound to {bound!r} in the concepts, "
                f"not {entry.concept!r}",
            )
    reader.pack.code_lists.append(found)


def check_subject(pack: PackContents, data: Any, name: str, add: Any) -> None:
    """Each of the manifest's subject codes is bound to the subject concept."""
    manifest = pack.manifest
    if manifest is None or not manifest.subject_codes:
        return
    bound: dict[tuple[str, str], str] = {}
    for concept in pack.concepts:
        for code in concept.codes:
            bound.setdefault(code_key(code.system, code.code), concept.id)
    for codes in pack.code_lists:
        for entry in codes.codes:
            bound.setdefault(code_key(codes.system, entry.code), entry.concept)
    for i, code in enumerate(manifest.subject_codes):
        concept = bound.get(code_key(code.system, code.code))
        if concept != manifest.subject:
            what = f"bound to {concept!r}" if concept else "not bound to any concept"
            add(
                name,
                locate(data, ("subject_codes", i)),
                f"subject_codes[{i}]: {code.system} {code.code} is {what}; bind it to the "
                f"subject concept {manifest.subject!r} in the concepts",
            )


def code_bindings(code_lists: list[CodeList]) -> list[tuple[str, str, str]]:
    """(system, code, concept) of every code of the lists, in order."""
    return [(cl.system, e.code, e.concept) for cl in code_lists for e in cl.codes]
