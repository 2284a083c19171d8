"""`caveat batch` and `evaluate_many`: streamed, ordered, parallel, never stopped by bad input."""

from __future__ import annotations

import errno
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from itertools import islice
from pathlib import Path

import pytest
from conftest import CASES, REPO, caveat

from engine import evaluate, load_knowledge_base
from engine.batch import CHUNK, WINDOW, evaluate_many, run_chunks, run_parallel
from engine.casefiles import read_cases
from engine.cli import atomic_output, main
from engine.reports import JsonlWriter, Summary


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_case_library_passes():
    proc = caveat("batch", "fixtures/cases", "--format", "table")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    count = len(list(read_cases([CASES])))
    assert f"{count} cases: {count} passed, 0 failed, 0 errors" in proc.stderr


@pytest.mark.parametrize("suffix", ["jsonl", "json", "html"])
def test_parallel_and_serial_give_identical_output(tmp_path: Path, suffix: str):
    serial, parallel = tmp_path / f"serial.{suffix}", tmp_path / f"parallel.{suffix}"
    assert main(["batch", str(CASES), "--workers", "1", "--out", str(serial), "--quiet"]) == 0
    assert main(["batch", str(CASES), "--workers", "2", "--out", str(parallel), "--quiet"]) == 0
    assert serial.read_bytes() == parallel.read_bytes()
    if suffix == "html":
        return
    records = jsonl(serial) if suffix == "jsonl" else json.loads(serial.read_text())["cases"]
    assert [r["case"] for r in records] == [e.name for e in read_cases([CASES])]
    assert {r["status"] for r in records} == {"pass"}


def test_order_is_kept_with_many_small_chunks():
    kb = load_knowledge_base()
    names = ["RLS", "epilepsy", "panic disorder", "bruxism", "akathisia", "insomnia", "x"]
    items = [{"id": f"c{i}", "conditions": [names[i % len(names)]]} for i in range(500)]
    got = list(run_parallel(items, kb=kb, workers=2, chunk_size=3))
    assert [outcome.case for outcome in got] == [f"c{i}" for i in range(500)]
    for item, outcome in zip(items, got, strict=True):
        assert outcome.result == evaluate(item)
    out = io.BytesIO()  # not a file: the writer copies the workers' spool files by hand
    writer = JsonlWriter(out, kb)
    for chunk in run_chunks(items, kb=kb, workers=2, chunk_size=3, output="lines"):
        writer.add_chunk(chunk)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["case"] for line in lines] == [f"c{i}" for i in range(500)]
    for line, outcome in zip(lines, got, strict=True):
        assert line["result"] == outcome.result.model_dump(mode="json")


def test_a_report_that_counts_gets_every_count_and_only_the_records_it_keeps():
    kb = load_knowledge_base()
    wrong = {"expect": {"applies": ["acute-mania"]}}
    items = [
        {"id": f"c{i}", "conditions": ["RLS"], **(wrong if i % 50 == 7 else {})} for i in range(400)
    ]
    for workers in (1, 2):
        chunks = list(run_chunks(items, kb=kb, workers=workers, output="records", detail=100))
        assert sum(chunk.size for chunk in chunks) == 400
        # whole chunks up to the 100th case (2 of 64), then only the failures
        assert [r.case for c in chunks for r in c.records] == [
            *(f"c{i}" for i in range(128)),
            *(f"c{i}" for i in range(128, 400) if i % 50 == 7),
        ]
        summary = Summary(kb, max_rows=100)
        for chunk in chunks:
            summary.add_chunk(chunk)
        assert summary.cases == 400 and summary.status == {"evaluated": 392, "fail": 8}
        assert summary.rules["rls-third-line"] == 400
        # the first 100 rows, and the failures past them (each listed failure has its row)
        assert [row.case for row in summary.rows] == [
            *(f"c{i}" for i in range(100)),
            *(f"c{i}" for i in range(100, 400) if i % 50 == 7),
        ]
        assert [row.case for row in summary.failures] == [f"c{i}" for i in range(7, 400, 50)]


def test_spooled_lines_are_copied_by_hand_where_sendfile_cannot_write(tmp_path, monkeypatch):
    kb = load_knowledge_base()
    items = [{"id": f"c{i}", "conditions": ["RLS"]} for i in range(300)]
    calls = []

    def no_sendfile(*args):  # as on a system whose sendfile writes only to sockets
        calls.append(args)
        raise OSError(errno.ENOTSOCK, "Socket operation on non-socket")

    monkeypatch.setattr(os, "sendfile", no_sendfile)
    with open(tmp_path / "out.jsonl", "wb") as out:
        writer = JsonlWriter(out, kb)
        for chunk in run_chunks(items, kb=kb, workers=2, chunk_size=16, output="lines"):
            writer.add_chunk(chunk)
    assert len(calls) == 1  # tried once, then not again
    assert [r["case"] for r in jsonl(tmp_path / "out.jsonl")] == [f"c{i}" for i in range(300)]

    def full_disk(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "sendfile", full_disk)
    with open(tmp_path / "out.jsonl", "wb") as out, pytest.raises(OSError, match="No space"):
        writer = JsonlWriter(out, kb)
        for chunk in run_chunks(items, kb=kb, workers=2, chunk_size=16, output="lines"):
            writer.add_chunk(chunk)


def test_input_is_read_ahead_only_a_bounded_amount():
    consumed = 0

    def cases():
        nonlocal consumed
        for i in range(100_000):
            consumed += 1
            yield {"id": str(i), "conditions": ["RLS"]}

    stream = run_parallel(cases(), kb=load_knowledge_base(), workers=2)
    first = list(islice(stream, 10))
    assert [r.case for r in first] == [str(i) for i in range(10)]
    assert consumed <= (2 * WINDOW + 2) * CHUNK
    stream.close()


def test_a_bad_file_among_good_ones_is_reported_and_the_rest_runs(tmp_path: Path):
    (tmp_path / "a-good.yaml").write_text("id: good\nconditions: [RLS]\n")
    (tmp_path / "b-bad.yaml").write_text("conditions: [RLS\n")
    (tmp_path / "c-invalid.json").write_text('{"id": "invalid", "patient": {"age": "nine"}}')
    (tmp_path / "d-lines.jsonl").write_text(
        '{"id": "l1", "conditions": ["bruxism"]}\n{oops\n\n'
        '{"id": "l3", "conditions": ["akathisia"]}\n'
    )
    (tmp_path / "e-unreadable.yaml").write_bytes(b"\xff\xfe\x00bad")
    out = tmp_path / "report.jsonl"
    proc = caveat("batch", str(tmp_path), "--out", str(out), "--workers", "2")
    assert proc.returncode == 2
    records = {r["case"]: r for r in jsonl(out)}
    assert records["good"]["status"] == "evaluated"
    assert records["l1"]["status"] == "evaluated" and records["l3"]["status"] == "evaluated"
    bad = records[str(tmp_path / "b-bad.yaml")]
    assert (
        bad["status"] == "error"
        and f"{tmp_path / 'b-bad.yaml'}:2:1: not valid YAML" in (bad["problems"][0])
    )
    assert records["invalid"]["status"] == "error"
    assert "patient.age" in records["invalid"]["problems"][0]
    broken_line = records[f"{tmp_path / 'd-lines.jsonl'}#2"]
    assert (
        broken_line["line"] == 2
        and "d-lines.jsonl:2:2: not valid JSON" in (broken_line["problems"][0])
    )
    assert records[str(tmp_path / "e-unreadable.yaml")]["status"] == "error"
    assert len(records) == 7


def test_exit_codes(tmp_path: Path):
    good = tmp_path / "good.yaml"
    good.write_text("conditions: [RLS]\nexpect: {applies: [rls-third-line]}\n")
    failing = tmp_path / "failing.yaml"
    failing.write_text(
        "conditions: [RLS]\nexpect: {applies: [acute-mania], not_applies: [rls-third-line]}\n"
    )
    expected_error = tmp_path / "expected-error.yaml"
    expected_error.write_text("patient: {age: -3}\nexpect: {error: true}\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("patient: {age: -3}\n")
    assert (
        main(
            ["batch", str(good), str(expected_error), "--quiet", "--out", str(tmp_path / "1.jsonl")]
        )
        == 0
    )
    assert (
        main(["batch", str(good), str(failing), "--quiet", "--out", str(tmp_path / "2.jsonl")]) == 1
    )
    assert (
        main(
            [
                "batch",
                str(good),
                str(failing),
                str(bad),
                "--quiet",
                "--out",
                str(tmp_path / "3.jsonl"),
            ]
        )
        == 2
    )
    (record,) = [r for r in jsonl(tmp_path / "2.jsonl") if r["status"] == "fail"]
    assert record["problems"] == [
        "expected acute-mania to apply; it does not apply",
        "expected rls-third-line not to apply; it applies",
    ]


def test_a_failure_shows_expected_against_actual(tmp_path: Path):
    case = tmp_path / "failing.yaml"
    case.write_text("id: wrong\nconditions: [RLS]\nexpect: {applies: [acute-mania]}\n")
    proc = caveat("batch", str(case), "--format", "markdown")
    assert proc.returncode == 1
    assert "### `wrong`" in proc.stdout
    assert "expected acute-mania to apply; it does not apply" in proc.stdout
    assert "actual: applies [rls-third-line]; undetermined [rls-before-third-line]" in proc.stdout


def test_jsonl_from_standard_input():
    lines = "\n".join(json.dumps({"id": f"s{i}", "conditions": ["RLS"]}) for i in range(5))
    proc = caveat("batch", "-", "--format", "jsonl", stdin=lines + "\n")
    assert proc.returncode == 0
    assert [json.loads(x)["case"] for x in proc.stdout.splitlines()] == [f"s{i}" for i in range(5)]


def test_json_report_has_cases_and_summary(tmp_path: Path):
    out = tmp_path / "r.json"
    assert main(["batch", str(CASES / "panic.yaml"), "--out", str(out), "--quiet"]) == 0
    data = json.loads(out.read_text())
    assert len(data["cases"]) == data["summary"]["cases"] == data["summary"]["passed"]
    assert data["summary"]["rules"]["indication-panic-disorder"] > 0
    assert data["summary"]["knowledge_base"]["id"] == "clonazepam"


def test_html_is_one_well_formed_self_contained_page(tmp_path: Path):
    failing = tmp_path / "failing.yaml"
    failing.write_text("id: failing-case\nconditions: [RLS]\nexpect: {applies: [acute-mania]}\n")
    out = tmp_path / "r.html"
    assert main(["batch", str(CASES), str(failing), "--out", str(out), "--quiet"]) == 1
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>")
    root = ET.fromstring(text.split("\n", 1)[1])  # well-formed: parses as XML
    assert "http" not in " ".join(e.get("src", "") + e.get("href", "") for e in root.iter())
    assert not [e for e in root.iter() if e.tag in ("link", "img")]
    assert all(not e.get("src") for e in root.iter("script"))  # one small inline script
    kb = load_knowledge_base()
    matrix = next(t for t in root.iter("table") if t.get("class") == "matrix")
    header = [th.find("small").text for th in matrix.find("thead/tr")[1:]]
    outcomes = [o for o in evaluate_many(read_cases([CASES]), knowledge_base=kb) if o.result]
    given = {s.rule for o in outcomes for s in o.result.statements}
    given |= {u.rule for o in outcomes for u in o.result.undetermined}
    assert header == [r.id for r in kb.rules if r.id in given]  # the rules the batch gave
    rows = [tr.get("id") for tr in matrix.find("tbody")]
    assert rows[0] == "case-failing-case"  # failures first
    assert sorted(rows) == sorted(f"case-{e.name}" for e in read_cases([CASES, failing]))
    cell = next(td for td in matrix.iter("td") if "maybe" in (td.get("class") or ""))
    assert "needs " in "".join(cell.itertext())  # a ? names the fact that would decide it
    details = next(matrix.iter("details"))
    assert "“" in "".join(details.itertext())  # the quote, in the row's full result


def test_html_all_rules_gives_every_rule_a_column(tmp_path: Path):
    out = tmp_path / "r.html"
    main(["batch", str(CASES / "bad-input.yaml"), "--out", str(out), "--quiet", "--all-rules"])
    root = ET.fromstring(out.read_text().split("\n", 1)[1])
    matrix = next(t for t in root.iter("table") if t.get("class") == "matrix")
    header = [th.find("small").text for th in matrix.find("thead/tr")[1:]]
    assert header == [r.id for r in load_knowledge_base().rules]
    text = "".join(matrix.itertext())
    assert "rejected as expected" in text


def test_the_output_file_is_replaced_only_when_complete(tmp_path: Path):
    target = tmp_path / "report.jsonl"
    target.write_text("a good report\n")
    with pytest.raises(RuntimeError), atomic_output(str(target)) as out:
        out.write(b"half a rep")
        raise RuntimeError("interrupted")
    assert target.read_text() == "a good report\n"
    assert os.listdir(tmp_path) == ["report.jsonl"]
    with atomic_output(str(target)) as out:
        out.write(b"new\n")
    assert target.read_text() == "new\n"


def test_ctrl_c_stops_the_workers_keeps_the_old_report_and_writes_a_partial_one(tmp_path: Path):
    big = tmp_path / "big.jsonl"
    big.write_text(
        "".join(
            json.dumps({"id": f"c{i}", "conditions": ["RLS", "panic disorder"]}) + "\n"
            for i in range(300_000)
        )
    )
    target = tmp_path / "report.jsonl"
    target.write_text("a good report\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "batch", str(big), "--out", str(target), "--workers", "2"],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    time.sleep(4)
    assert proc.poll() is None, "the run should still be going"
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C reaches the whole group
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted" in stderr and "cases:" in stderr
    assert target.read_text() == "a good report\n"
    assert sorted(os.listdir(tmp_path)) == ["big.jsonl", "report.jsonl", "report.jsonl.partial"]
    assert f"{target}.partial" in " ".join(stderr.split())
    done = int(re.search(r"([\d,]+) cases:", stderr).group(1).replace(",", ""))
    records = [json.loads(line) for line in (tmp_path / "report.jsonl.partial").open()]
    assert 0 < len(records) == done < 300_000  # the cases done, in order, each whole
    assert [r["case"] for r in records] == [f"c{i}" for i in range(done)]


def test_evaluate_many_yields_outcomes_in_order():
    items = [
        {"conditions": ["RLS"], "therapy": {"line": 1}},
        {"patient": {"age": "x"}},
        {"conditions": ["RLS"], "expect": {"applies": ["rls-third-line"]}},
    ]
    for workers in (1, 2):
        outcomes = list(evaluate_many(items, workers=workers))
        assert [o.status for o in outcomes] == ["evaluated", "error", "pass"]
        assert outcomes[0].result == evaluate(items[0])
        assert "patient.age" in outcomes[1].problems[0]


def test_a_worker_that_fails_stops_the_batch_with_a_clear_error(tmp_path, monkeypatch, capsys):
    def broken(*args, **kwargs):  # inherited by the forked workers
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("engine.batch._evaluate", broken)
    target = tmp_path / "report.jsonl"
    args = ["batch", str(CASES), "--workers", "2", "--quiet", "--out", str(target)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "error: batch worker 0 failed: OSError: [Errno 28] No space left on device" in err
    assert "Traceback" not in err and os.listdir(tmp_path) == []


def test_an_output_that_cannot_be_written_is_a_clear_error(tmp_path, monkeypatch, capsys):
    def full(self, chunk):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "report.jsonl"))

    monkeypatch.setattr(JsonlWriter, "add_chunk", full)
    args = ["batch", str(CASES), "--workers", "1", "--quiet", "--out", str(tmp_path / "r.jsonl")]
    assert main(args) == 2
    assert "report.jsonl: No space left on device" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_a_worker_that_dies_stops_the_batch_with_a_clear_error(tmp_path, monkeypatch, capsys):
    def die(*args, **kwargs):  # as the kernel's out-of-memory killer would
        os._exit(9)

    monkeypatch.setattr("engine.batch._evaluate", die)
    target = tmp_path / "report.jsonl"
    target.write_text("a good report\n")
    args = ["batch", str(CASES), "--workers", "2", "--quiet", "--out", str(target)]
    assert main(args) == 2
    assert "error: batch worker 0 died (exit code 9)" in capsys.readouterr().err
    assert target.read_text() == "a good report\n" and os.listdir(tmp_path) == ["report.jsonl"]


def test_the_progress_bar_says_what_it_is_doing_on_a_terminal(tmp_path: Path):
    """In a pseudo-terminal: the phases before the first cases are back, then live counts of
    passed, failed and errors, with thousands separators."""
    import pty

    cases = tmp_path / "cases.jsonl"
    cases.write_text(
        "".join(
            json.dumps({"id": f"c{i}", "conditions": ["RLS"], "expect": {"applies": []}}) + "\n"
            for i in range(30_000)
        )
    )
    command = [sys.executable, "-m", "engine", "batch", str(cases), "--workers", "2",
               "--format", "jsonl", "--out", str(tmp_path / "out.jsonl")]  # fmt: skip
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command, on the terminal
        os.chdir(REPO)
        os.environ["COLUMNS"] = "160"
        os.execv(command[0], command)
    seen = b""
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        seen += data
    os.waitpid(pid, 0)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", seen.decode(errors="replace"))
    assert "counting cases" in text or "starting 2 workers" in text or "loading pack" in text
    assert "evaluating" in text and "passed" in text and "errors 0" in text
    assert re.search(r"\d{1,3},\d{3}/30,000", text)  # cases done of the total, with commas
    assert "30,000 cases: 30,000 passed, 0 failed" in " ".join(text.split())


def test_cases_lists_each_case_on_a_line_of_its_own(tmp_path: Path):
    source = CASES / "movement-and-sleep.yaml"
    done = caveat("batch", str(source), "--cases", "--quiet")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if " · passed · " in line]
    names = [e.name for e in read_cases([source])]
    assert [line.split(" · ")[0] for line in lines] == names  # one line each, in input order
    assert any("[third line, investigational]" in line for line in lines)  # caveat labels
    refused = caveat("batch", str(source), "--cases", "--format", "jsonl")
    assert refused.returncode == 2 and "--cases lists the cases in the table" in refused.stderr
