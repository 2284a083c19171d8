"""Reports print what the input says, never what it would do (issue 10, item 13).

Case ids, file names, problems and labels come from whoever wrote the input. Every report writes
them for its medium: no control character reaches a terminal or a page, no Markdown heading or
HTML element comes from the input, rich markup in the input is shown, not obeyed, and a file name
that is not UTF-8 is reported like any other.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import REPO

from engine.cleantext import code_span, markdown, markdown_code, no_surrogates, printable
from engine.reports import FORMATS

HOSTILE = "x\n# Heading\n<img src=x onerror=alert(1)>\x1b]0;pwned\x07\x1b[2J"
# no C0 control, so a scenario takes it as text: HTML, rich markup, a bidi override, a Markdown
# heading and link, and a C1 CSI (U+009B) and DEL where an id is not validated
SNEAKY = "# <img src=x onerror=alert(2)> [bold red]loud[/] \u202eevil [a](javascript:x) `code`"
C1 = "c1 \x9b2J del \x7f"

# control characters (but the newline), C1, and the bidi override, as a terminal or page gets them
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def run(*args: str | bytes, cwd: Path = REPO) -> subprocess.CompletedProcess[bytes]:
    """The command line in a process of its own, its output as bytes."""
    return subprocess.run(
        [sys.executable, "-m", "engine", *args], capture_output=True, cwd=cwd, timeout=300
    )


def _write(path: Path | bytes, data: object) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f)


def _hostile_cases(root: Path) -> Path:
    cases = root / "cases"
    cases.mkdir()
    _write(
        cases / "hostile.json",
        {"id": HOSTILE, "conditions": ["panic disorder"], "expect": {"applies": [HOSTILE]}},
    )
    _write(
        cases / "sneaky.json",
        {"id": SNEAKY, "conditions": [SNEAKY[:150]], "expect": {"applies": [SNEAKY]}},
    )
    _write(cases / "c1.json", {"id": C1, "conditions": ["RLS"], "expect": {"applies": [C1]}})
    # a file whose name is hostile, holding malformed JSON: its error names the file
    (cases / "evil \x1b]0;t\x07\n# Name <img src=x onerror=alert(3)>.json").write_text("{")
    return cases


def _text(out: bytes) -> str:
    text = out.decode("utf-8")  # strict: the report is UTF-8
    assert not UNSAFE.search(text), UNSAFE.findall(text)
    return text


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_hostile_case_id_and_file_name_in_every_report_format(tmp_path: Path, fmt: str):
    cases = _hostile_cases(tmp_path)
    proc = run("batch", str(cases), "--format", fmt, "--workers", "1", "--quiet")
    assert b"Traceback" not in proc.stderr, proc.stderr.decode(errors="replace")
    assert proc.returncode == 2  # bad input: reported, not obeyed
    _text(proc.stderr)
    if fmt in ("jsonl", "json"):
        # JSON escapes control characters itself; every id comes back exactly as it was given
        raw = proc.stdout.decode("utf-8")
        assert "\x1b" not in raw and "\x07" not in raw
        records = (
            json.loads(raw)["cases"]
            if fmt == "json"
            else [json.loads(x) for x in raw.split("\n") if x]
        )
        assert {HOSTILE, SNEAKY, C1} <= {r["case"] for r in records}
        return
    text = _text(proc.stdout)
    if fmt != "table":  # (a table may fold a long id)
        assert "pwned" in text  # shown, its escapes escaped
    if fmt == "markdown":
        assert "<img" not in text
        for line in text.splitlines():
            if line.startswith("#"):
                assert re.match(r"(# Batch report: |## [A-Z]|### )", line), line
            assert not line.lstrip().startswith(("# Heading", "# Name", "<"))
        assert not re.search(r"(?<!\\)\]\(", text)  # no link: every ] is escaped
    if fmt == "html":
        assert "<img" not in text
        root = ET.fromstring(text.split("\n", 1)[1])  # well-formed: parses as XML
        assert not [e for e in root.iter() if e.tag in ("script", "img", "a") and e.get("src")]
        for element in root.iter():
            assert not re.search(r"\s", element.get("id", "")), element.get("id")
            assert element.get("onerror") is None
        anchors = {e.get("href")[1:] for e in root.iter("a")}
        assert anchors <= {e.get("id") for e in root.iter()}  # every link lands
    if fmt == "table":
        assert "[bold red]loud[/]" in text  # rich markup shown, not obeyed


def _utf8_name_cases(root: Path, name: bytes) -> Path:
    directory = os.fsencode(root / "cases")
    os.makedirs(directory)
    with open(os.path.join(directory, name), "w") as f:  # it fails, so reports list the file
        f.write("id: odd-name\nconditions: [panic disorder]\nexpect: {applies: [acute-mania]}\n")
    return root


@pytest.mark.parametrize(
    "fmt",
    [
        "jsonl",
        "json",
        "html",
        "markdown",
        "table",
    ],
)
def test_a_file_name_that_is_not_utf8_is_reported_like_any_other(tmp_path: Path, fmt: str):
    odd = _utf8_name_cases(tmp_path / "odd", b"case-\xff\xfe.yaml")
    plain = _utf8_name_cases(tmp_path / "plain", b"case-plain.yaml")
    options = ("--format", fmt, "--workers", "1", "--quiet")
    proc = run("batch", "cases", *options, cwd=odd)  # (a short path: a table folds long ones)
    assert b"Traceback" not in proc.stderr, proc.stderr.decode(errors="replace")
    expected = run("batch", "cases", *options, cwd=plain).returncode
    assert proc.returncode == expected == 1
    text = _text(proc.stdout)
    if fmt == "jsonl":
        assert json.loads(text)["path"].endswith("case-\\xff\\xfe.yaml")
    elif fmt == "json":
        assert json.loads(text)["cases"][0]["path"].endswith("case-\\xff\\xfe.yaml")
    else:
        assert "case-\\xff\\xfe.yaml" in text.replace("\\\\", "\\")


def _scenario(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "scenario.json"
    _write(path, data)
    return path


def test_evaluate_and_explain_show_input_text_as_text(tmp_path: Path):
    path = _scenario(tmp_path, {"id": SNEAKY, "conditions": [SNEAKY[:150], "panic disorder"]})
    for args in (("evaluate", str(path)), ("explain", str(path))):
        proc = run(*args)
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        text = _text(proc.stdout)
        assert "\\u202e" in text  # the override, shown as its escape
        if args[0] == "evaluate":
            assert "[bold red]loud[/]" in text
    proc = run("evaluate", str(path), "--json")
    assert json.loads(proc.stdout)["scenario_id"] == SNEAKY


def test_evaluate_and_explain_print_no_control_character_of_the_input(tmp_path: Path):
    path = _scenario(tmp_path, {"id": HOSTILE, "conditions": [HOSTILE, "panic disorder"]})
    for args in (
        ("evaluate", str(path)),
        ("explain", str(path)),
        ("evaluate", str(path), "--json"),
    ):
        proc = run(*args)
        assert b"Traceback" not in proc.stderr
        _text(proc.stdout)
        _text(proc.stderr)


def test_an_error_message_that_echoes_a_file_name_prints_no_control_character(tmp_path: Path):
    path = tmp_path / "evil \x1b]0;pwned\x07\x1b[2J.yaml"
    path.write_text("conditions: [panic disorder]\ntherapy: {intent: sometimes}\n")
    proc = run("evaluate", str(path))
    assert proc.returncode == 2
    _text(proc.stderr)


# -- the helpers ----------------------------------------------------------------------------------


def test_printable_escapes_every_control_and_keeps_the_rest():
    assert printable(HOSTILE) == (
        "x\\n# Heading\\n<img src=x onerror=alert(1)>\\x1b]0;pwned\\x07\\x1b[2J"
    )
    assert printable("a\nb\tc", newlines=True) == "a\nb\\tc"
    assert printable("\x7f\x9b\u202e\u2028é中 ok") == "\\x7f\\x9b\\u202e\\u2028é中 ok"
    assert printable(os.fsdecode(b"case-\xff.yaml")) == "case-\\xff.yaml"
    assert no_surrogates(os.fsdecode(b"a\xffb\x1b")) == "a\\xffb\x1b"
    assert no_surrogates("\ud800") == "\\ud800"


def test_markdown_is_literal_inline_text():
    assert markdown(HOSTILE) == (
        "x # Heading &lt;img src=x onerror=alert(1)&gt;\\\\x1b]0;pwned\\\\x07\\\\x1b[2J"
    )
    assert markdown("# Heading") == "\\# Heading"
    assert markdown("- item") == "\\- item"
    assert markdown("1. first") == "1\\. first"
    assert markdown("a | b *c* _d_ [e](f) ![g](h) `i` ~j~ $k$ &amp; [x]") == (
        "a \\| b \\*c\\* \\_d\\_ [e\\](f) ![g\\](h) \\`i\\` \\~j\\~ \\$k\\$ &amp;amp; [x]"
    )
    assert markdown("expected ncse-add-phenytoin to apply.") == (
        "expected ncse-add-phenytoin to apply."
    )
    assert markdown("2.0.0 -x") == "2.0.0 -x"
    assert markdown("-- x") == "\\-- x"


def test_code_span_cannot_be_closed_by_the_text():
    assert code_span("rule-id") == "`rule-id`"
    assert code_span("a`b") == "``a`b``"
    assert code_span("`a``") == "``` `a`` ```"
    assert code_span("a\nb") == "`a b`"
    assert markdown_code("case-17 a.yaml#2") == "`case-17 a.yaml#2`"
    assert markdown_code("<img src=x>") == "&lt;img src=x&gt;"
