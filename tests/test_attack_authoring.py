"""The rule-authoring commands under attack (issue 10, "Correct under attack"): a diff BASE that git
would read as an option, rule ids that are paths, pack paths that leave the pack, and release or
review text that would break the YAML it is written into."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import CASES, RULES, caveat, edit
from hypothesis import given
from hypothesis import strategies as st

from engine import KnowledgeBase, load_knowledge_base
from engine.authoring import Refused, check_pack, governance, release, review, scaffold
from engine.authoring.scaffold import _slug, yaml_scalar
from engine.pack import read_pack
from engine.rules import RULE_ID_MAX, RULE_ID_PATTERN

GIT = ["git", "-c", "user.email=t@example.org", "-c", "user.name=t"]


def commit_all(repo: Path) -> None:
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run([*GIT, *command], cwd=repo, check=True, capture_output=True)


def tree(root: Path) -> dict[str, bytes]:
    """Every file under a directory, with its content (symlinks as their target)."""
    out: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            out[str(path.relative_to(root))] = os.readlink(path).encode()
        elif path.is_file():
            out[str(path.relative_to(root))] = path.read_bytes()
    return out


def where(path: Path, text: str) -> tuple[int, int]:
    """The 1-based line and column where `text` starts in a file."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if text in line:
            return number, line.index(text) + 1
    raise AssertionError(f"{text!r} not in {path}")


# -- 3. rules diff BASE is never an option to git -------------------------------------------------


def test_diff_refuses_a_base_that_git_would_read_as_an_option(pack: Path, tmp_path: Path):
    commit_all(pack.parent)
    victim = tmp_path / "victim dir" / "important.txt"
    victim.parent.mkdir()
    victim.write_text("precious\n")
    base = f"--output={victim}"  # a space in it: argparse takes it for BASE
    proc = caveat("rules", "diff", base, "--pack", "rules", "--cases", str(CASES), cwd=pack.parent)
    assert victim.read_text() == "precious\n"
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()  # one line
    assert repr(base) in line and "give a git revision or a pack directory" in line


def test_diff_refuses_a_dash_base_given_after_double_dash(pack: Path):
    commit_all(pack.parent)
    proc = caveat(
        "rules", "diff", "--pack", "rules", "--cases", str(CASES), "--", "-x", cwd=pack.parent
    )
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert "'-x'" in line and "./-x" in line  # how to name a directory called -x


def test_diff_against_head_from_the_command_line(pack: Path):
    commit_all(pack.parent)
    proc = caveat(
        "rules", "diff", "HEAD", "--pack", "rules", "--cases", str(CASES), cwd=pack.parent
    )
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"\n0 changed, \d+ unchanged\n$", proc.stdout), proc.stdout


def test_diff_against_an_unknown_revision_says_so_in_one_line(pack: Path):
    commit_all(pack.parent)
    proc = caveat(
        "rules", "diff", "no-such-revision", "--pack", "rules", "--cases", str(CASES),
        cwd=pack.parent,
    )  # fmt: skip
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert "'no-such-revision' is neither a pack directory nor a git revision" in line


def test_diff_against_a_directory_whose_name_starts_with_a_dash(pack: Path):
    shutil.copytree(pack, pack.parent / "-before")
    proc = caveat(
        "rules", "diff", "./-before", "--pack", "rules", "--cases", str(CASES), cwd=pack.parent
    )
    assert proc.returncode == 0, proc.stderr


# -- 6. rule ids: one pattern, checked everywhere, never a path -----------------------------------


BAD_IDS = [
    "../../../escaped-{session}",
    "{tmp}/absolute",
    "two\nlines",
    "UPPER_case",
    "double--hyphen",
    "-leading",
    "trailing-",
    "x" * (RULE_ID_MAX + 1),
]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_new_refuses_an_id_outside_the_pattern_and_writes_nothing(
    pack: Path, tmp_path: Path, bad: str
):
    session = tmp_path.parent.name  # pytest-N: a name no earlier run wrote
    bad = bad.format(tmp=tmp_path, session=session)
    cases = tmp_path / "cases"
    cases.mkdir()
    before = tree(tmp_path)
    proc = caveat(
        "rules",
        "new",
        "--sentence",
        "17",
        f"--id={bad}",
        "--pack",
        str(pack),
        "--cases",
        str(cases),
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "is not a valid rule id" in proc.stderr and RULE_ID_PATTERN in proc.stderr
    assert tree(tmp_path) == before
    for escaped in (tmp_path.parent, tmp_path.parent.parent):
        assert not (escaped / f"escaped-{session}.yaml").exists()
    assert not (tmp_path / "absolute.yaml").exists()


def test_new_with_a_valid_id_writes_one_rule_file_and_one_case_file(pack: Path, tmp_path: Path):
    cases = tmp_path / "cases"
    cases.mkdir()
    made = scaffold(load_knowledge_base(pack), sentence=17, rule_id="mania-2", cases_dir=cases)
    assert made.rule_file == pack / "rules" / "mania-2.yaml" and made.rule_file.is_file()
    assert made.case_file == cases / "mania-2.yaml" and made.case_file.is_file()


def test_new_refuses_a_case_directory_inside_the_rules_directory(pack: Path):
    kb = load_knowledge_base(pack)
    before = tree(pack)
    with pytest.raises(ValueError, match=r"case directory .* inside the pack's rules directory"):
        scaffold(kb, sentence=17, rule_id="mania-2", cases_dir=pack / "rules")
    assert tree(pack) == before


def test_new_never_writes_through_a_symlink(pack: Path, tmp_path: Path):
    cases = tmp_path / "cases"
    cases.mkdir()
    outside = tmp_path / "outside" / "target.yaml"
    outside.parent.mkdir()
    kb = load_knowledge_base(pack)
    (pack / "rules" / "mania-2.yaml").symlink_to(outside)  # dangling: exists() says False
    with pytest.raises(ValueError, match="exists already"):
        scaffold(kb, sentence=17, rule_id="mania-2", cases_dir=cases)
    assert not outside.exists()
    assert list(cases.iterdir()) == []


def test_new_refuses_an_unknown_source_by_name(pack: Path, tmp_path: Path):
    proc = caveat(
        "rules", "new", "--sentence", "17", "--source", "nope", "--pack", str(pack),
        "--cases", str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 2
    assert "no source 'nope'" in proc.stderr and "clonazepam-monograph" in proc.stderr


@given(st.text())
def test_a_slug_made_from_any_text_is_a_valid_rule_id(text: str):
    slug = _slug(text)
    assert re.fullmatch(RULE_ID_PATTERN, slug) and len(slug) <= RULE_ID_MAX


def test_every_bundled_sentence_slugs_to_a_valid_rule_id(kb: KnowledgeBase):
    for source in kb.sources.values():
        for sentence in source.sentences:
            slug = _slug(sentence.text)
            assert re.fullmatch(RULE_ID_PATTERN, slug) and len(slug) <= RULE_ID_MAX, slug


def test_the_bundled_rule_ids_follow_the_pattern():
    rules = read_pack(RULES).rules
    assert rules
    for rule in rules:
        assert re.fullmatch(RULE_ID_PATTERN, rule.id) and len(rule.id) <= RULE_ID_MAX, rule.id


@pytest.mark.parametrize("bad", ["Acute_Mania", "acute--mania", "acute-mania-"])
def test_check_reports_a_bad_rule_id_where_it_is(pack: Path, bad: str):
    path = pack / "rules" / "4-mood.yaml"
    edit(path, "  - id: acute-mania\n", f"  - id: {bad}\n")
    line, column = where(path, f"id: {bad}")
    found = [str(p) for p in check_pack(pack, [CASES]).errors]
    expected = (
        f"rules/rules/4-mood.yaml:{line}:{column + 4}: rules[0].id: {bad!r} is not a valid rule id"
    )
    assert any(f.startswith(expected) and RULE_ID_PATTERN in f for f in found), found


# -- 10. pack paths are relative and stay inside the pack -----------------------------------------


def pack_path_cases(tmp: Path) -> list[tuple[str, str, str]]:
    """(the line of pack.yaml, the bad value, what the problem must say)"""
    return [
        ("concepts: concepts.yaml", "/etc/hostname", "not a path relative to the pack"),
        ("concepts: concepts.yaml", "../outside.yaml", "leads outside the pack"),
        ("caveats: caveats.yaml", "sub/../../outside.yaml", "leads outside the pack"),
        ("rules: rules", "..", "leads outside the pack"),
        ("rules: rules", str(tmp), "not a path relative to the pack"),
        ("  - sources/clonazepam-monograph.yaml", str(tmp / "s.yaml"), "not a path relative"),
        ("  - sources/clonazepam-monograph.yaml", "../s.yaml", "leads outside the pack"),
        ("concepts: concepts.yaml", '"a\\0b"', "control character"),
    ]


@pytest.mark.parametrize("index", range(8))
def test_a_pack_path_that_leaves_the_pack_is_reported_where_it_is_written(
    pack: Path, tmp_path: Path, index: int
):
    line_text, value, says = pack_path_cases(tmp_path)[index]
    good = line_text.partition(": ")[2] or line_text.removeprefix("  - ")
    shutil.copy(pack / "concepts.yaml", tmp_path / "outside.yaml")  # readable, were it read
    shutil.copy(pack / "sources" / "clonazepam-monograph.yaml", tmp_path / "s.yaml")
    manifest = pack / "pack.yaml"
    line, _ = where(manifest, line_text)
    edit(manifest, line_text, line_text.removesuffix(good) + value)
    column = where(manifest, value)[1]
    found = [str(p) for p in check_pack(pack, [CASES]).errors]
    assert any(f.startswith(f"rules/pack.yaml:{line}:{column}: ") and says in f for f in found), (
        found
    )
    proc = caveat("rules", "check", str(pack), "--cases", str(CASES))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"pack.yaml:{line}:{column}: " in proc.stdout
    scenario = tmp_path / "s-scenario.yaml"
    scenario.write_text("conditions: [acute mania]\n")
    proc = caveat("evaluate", str(scenario), "--pack", str(pack))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "the knowledge pack cannot be loaded" in proc.stderr and says in proc.stderr


def test_a_pack_file_that_is_a_symlink_out_of_the_pack_is_refused(pack: Path, tmp_path: Path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.move(pack / "concepts.yaml", elsewhere / "concepts.yaml")
    (pack / "concepts.yaml").symlink_to(elsewhere / "concepts.yaml")
    line, column = where(pack / "pack.yaml", "concepts.yaml")
    found = [str(p) for p in check_pack(pack, [CASES]).errors]
    assert any(
        f.startswith(f"rules/pack.yaml:{line}:{column}: ") and "leads outside the pack" in f
        for f in found
    ), found


def test_a_rule_file_that_is_a_symlink_out_of_the_pack_is_refused(pack: Path, tmp_path: Path):
    outside = tmp_path / "mood.yaml"
    shutil.move(pack / "rules" / "4-mood.yaml", outside)
    (pack / "rules" / "4-mood.yaml").symlink_to(outside)
    found = [str(p) for p in check_pack(pack, [CASES]).errors]
    assert any(
        f.startswith("rules/rules/4-mood.yaml: ") and "leads outside the pack" in f for f in found
    ), found


@pytest.mark.parametrize("value", ["/etc/hostname", "../../outside.txt", "../sources/../../x.txt"])
def test_a_source_text_path_that_leaves_the_pack_is_reported_where_it_is(
    pack: Path, tmp_path: Path, value: str
):
    (tmp_path / "outside.txt").write_text("Clonazepam is a benzodiazepine.\n")
    record = pack / "sources" / "clonazepam-monograph.yaml"
    edit(record, "text: clonazepam-monograph.txt", f"text: {value}")
    line, column = where(record, value)
    found = [str(p) for p in check_pack(pack, [CASES]).errors]
    assert any(
        f.startswith(f"rules/sources/clonazepam-monograph.yaml:{line}:{column}: ")
        and ("leads outside the pack" in f or "not a path relative" in f)
        for f in found
    ), found
    proc = caveat("rules", "check", str(pack), "--cases", str(CASES))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr


# -- 11. release and review text is escaped or refused, and checked before it lands --------------


@given(st.text())
def test_a_yaml_scalar_holds_any_text_exactly_on_one_line(text: str):
    scalar = yaml_scalar(text)
    assert "\n" not in scalar and yaml.safe_load(f"key: {scalar}\n") == {"key": text}


def release_cli(pack: Path, *changes: str) -> subprocess.CompletedProcess:
    flags = [f"--change={c}" for c in changes]
    return caveat("rules", "release", "2.1.1", *flags, "--pack", str(pack), "--cases", str(CASES))


def test_release_refuses_a_control_character_and_leaves_pack_yaml_as_it_was(pack: Path):
    manifest = pack / "pack.yaml"
    before = manifest.read_bytes()
    proc = release_cli(pack, "a\x01b")
    assert proc.returncode in (1, 2), proc.stderr
    assert "Traceback" not in proc.stderr
    assert "control character U+0001" in proc.stderr
    assert manifest.read_bytes() == before
    KnowledgeBase.load(pack)


def test_release_keeps_a_change_holding_a_document_marker_exactly(pack: Path):
    text = "first\n---\nsecond"
    proc = release_cli(pack, text)
    assert proc.returncode == 0, proc.stderr
    assert read_pack(pack).manifest.changelog[0].changes == [text]
    assert KnowledgeBase.load(pack).version == "2.1.1"


def test_release_text_round_trips_whatever_yaml_makes_of_it(pack: Path):
    changes = [
        "first\n---\nsecond",
        "...\n...",
        "tab\there",
        'a "quote", a \\ backslash, a # and a: colon',
        "line\u2028separator, paragraph\u2029separator, \ufeff no-break",
        "  leading and trailing spaces  ",
        "- looks like a list item",
        "Ünïcödé ✓ and 💊",
        "",
    ]
    release(pack, "2.1.1", changes, "2026-12-02", cases=[CASES])
    assert read_pack(pack).manifest.changelog[0].changes == changes
    assert KnowledgeBase.load(pack).version == "2.1.1"


@pytest.mark.parametrize("bad", ["carriage\rreturn", "next\x85line", "escape\x1b[31m", "del\x7f"])
def test_release_refuses_any_control_character_but_newline_and_tab(pack: Path, bad: str):
    before = (pack / "pack.yaml").read_bytes()
    with pytest.raises(Refused, match=r"--change .* control character U\+"):
        release(pack, "2.1.1", ["fine", bad], "2026-12-02", cases=[CASES])
    assert (pack / "pack.yaml").read_bytes() == before


def test_release_checks_the_new_manifest_before_it_replaces_the_old(
    pack: Path, monkeypatch: pytest.MonkeyPatch
):
    manifest = pack / "pack.yaml"
    before, inode = manifest.read_bytes(), manifest.stat().st_ino
    monkeypatch.setattr(governance, "yaml_scalar", lambda text: '"' + text)  # unterminated
    with pytest.raises(Refused, match="left as it was"):
        release(pack, "2.1.1", ["x"], "2026-12-02", cases=[CASES])
    assert manifest.read_bytes() == before
    assert manifest.stat().st_ino == inode  # never replaced, not even for a moment
    assert sorted(p.name for p in pack.iterdir()) == sorted(p.name for p in RULES.iterdir())


def test_review_keeps_a_note_holding_a_document_marker_exactly(pack: Path):
    note = "checked\n---\nagainst the source\n...\n# and this"
    proc = caveat(
        "rules", "review", "acute-mania", "--by", "Dr. A", f"--note={note}", "--pack", str(pack)
    )
    assert proc.returncode == 0, proc.stderr
    (rule,) = [r for r in read_pack(pack).rules if r.id == "acute-mania"]
    assert (rule.reviews[-1].by, rule.reviews[-1].note) == ("Dr. A", note)
    KnowledgeBase.load(pack)


@pytest.mark.parametrize(
    "by,note,says",
    [
        ("Dr. A", "a\x01b", "--note holds the control character U+0001"),
        ("Dr.\x1bA", None, "--by holds the control character U+001B"),
        ("Dr. A\nDr. B", None, "--by holds a line break"),
    ],
)
def test_review_refuses_a_control_character_and_changes_nothing(
    pack: Path, by: str, note: str | None, says: str
):
    before = tree(pack)
    with pytest.raises(Refused, match=re.escape(says)):
        review(pack, ["acute-mania"], by, "2026-12-02", note=note)
    assert tree(pack) == before
    flags = [f"--note={note}"] if note else []
    proc = caveat("rules", "review", "acute-mania", f"--by={by}", *flags, "--pack", str(pack))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert says in proc.stderr
    assert tree(pack) == before


def test_review_checks_the_rule_file_before_it_replaces_it(
    pack: Path, monkeypatch: pytest.MonkeyPatch
):
    path = pack / "rules" / "4-mood.yaml"
    before, inode = path.read_bytes(), path.stat().st_ino
    monkeypatch.setattr(governance, "yaml_scalar", lambda text: '"' + text)  # unterminated
    with pytest.raises(Refused, match="nothing was changed"):
        review(pack, ["acute-mania"], "Dr. A", "2026-12-02", note="x")
    assert path.read_bytes() == before and path.stat().st_ino == inode
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(
        p.name for p in (RULES / "rules").iterdir()
    )
