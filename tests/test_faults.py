"""The batch under attack: signals to the parent, a killed worker, writes that fail, a read-only
output directory, a closed pipe, forks that fail or happen while another thread evaluates, odd
--out targets. After each: the documented exit status, the previous report intact, and no
process and no temporary file left behind.

Each batch runs as `python -m engine` in a session of its own, so that every process it starts
(its workers) is found by its process group in /proc, and TMPDIR points at a directory of the
test's, so that spool directories are seen too. Waits poll; nothing sleeps for a fixed time.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import CASES, REPO

from engine import load_knowledge_base
from engine.batch import evaluate_many, run_chunks
from engine.cli import main
from engine.reports import FORMATS
from engine.workers import MAX_WORKERS

GOOD = "a good report\n"
NOBODY = 65534
SUFFIX = {"table": "txt", "jsonl": "jsonl", "json": "json", "markdown": "md", "html": "html"}


# -- helpers ---------------------------------------------------------------------------------


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "engine", *args]


def wait_until(condition: Callable[[], object], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return bool(condition())


def _stat_fields(pid: int | str) -> list[str] | None:
    """state, ppid, pgrp, ... of a process (the fields of /proc/PID/stat after its name)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def live(pids: Callable[[dict[str, str]], bool]) -> list[int]:
    """Processes, not yet zombies, whose stat fields satisfy `pids`."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat_fields(entry.name)
            if fields and fields[0] not in "ZX" and pids({"ppid": fields[1], "pgrp": fields[2]}):
                found.append(int(entry.name))
    return found


def group(pgid: int) -> list[int]:
    """The live processes of a process group."""
    return live(lambda f: int(f["pgrp"]) == pgid)


def children(pid: int) -> list[int]:
    return live(lambda f: int(f["ppid"]) == pid)


def spools(tmpdir: Path) -> list[str]:
    return [name for name in os.listdir(tmpdir) if name.startswith("caveat-spool-")]


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30,000 cases: several seconds of work for two workers."""
    path = tmp_path_factory.mktemp("input") / "big.jsonl"
    case = {"conditions": ["RLS", "panic disorder"], "expect": {"applies": ["rls-third-line"]}}
    with path.open("w") as f:
        for i in range(30_000):
            f.write(json.dumps({"id": f"c{i}", **case}) + "\n")
    return path


class Batch:
    """`caveat batch` in a session of its own, writing to out/report.<suffix> over a good one,
    with TMPDIR at tmp/."""

    def __init__(
        self,
        base: Path,
        *args: str,
        fmt: str = "jsonl",
        preexec: Callable[[], None] | None = None,
        script: tuple[str, ...] = (),
    ) -> None:
        """`script`: run as `python -c SCRIPT ARGS... batch ...` instead of `python -m engine`."""
        self.tmpdir = base / "tmp"
        self.tmpdir.mkdir(exist_ok=True)
        self.report = base / "out" / f"report.{SUFFIX[fmt]}"
        self.report.parent.mkdir(exist_ok=True)
        self.report.write_text(GOOD)
        argv = ["batch", *args, "--format", fmt, "--out", str(self.report)]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", *script, *argv] if script else command(*argv),
            cwd=REPO,
            env={**os.environ, "TMPDIR": str(self.tmpdir)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=preexec,
        )
        self.pid = self.proc.pid

    def temps(self) -> list[str]:
        keep = (self.report.name, self.partial.name)
        return [n for n in os.listdir(self.report.parent) if n not in keep]

    @property
    def partial(self) -> Path:
        return self.report.with_name(self.report.name + ".partial")

    def running(self, workers: int = 2) -> bool:
        """The workers are up and the report is being written."""
        if len(children(self.pid)) < workers:
            return False
        sizes = []
        for name in self.temps():
            with contextlib.suppress(FileNotFoundError):
                sizes.append((self.report.parent / name).stat().st_size)
        return any(sizes)

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        _, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, err

    def assert_clean(self, report: str = GOOD, partial: bool = False) -> None:
        """Nothing of the batch is left: no process within 5 s, no spool, no temporary file; and
        with `partial` (a batch stopped by a signal), the report of the cases done beside it, each
        record whole."""
        assert wait_until(lambda: not group(self.pid), 5), f"left running: {group(self.pid)}"
        assert wait_until(lambda: not spools(self.tmpdir), 5), spools(self.tmpdir)
        assert self.temps() == []
        assert self.report.read_text() == report
        assert self.partial.exists() == partial
        if partial:
            assert all(json.loads(line) for line in self.partial.read_text().splitlines())

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.communicate(timeout=10)


@pytest.fixture
def batches() -> Iterator[list[Batch]]:
    """Batches a test starts: whatever happens, none outlives the test."""
    started: list[Batch] = []
    yield started
    for batch in started:
        batch.kill()


def one_line(err: str) -> str:
    assert "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    return err.strip()


UNPRIVILEGED = """
import os, resource, sys
from engine.cli import main

cases, nproc, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
# Import all a batch needs while the interpreter's own files can be read (they may be where only
# root may go): run a batch like the real one, its output dropped. Then become nobody.
saved = os.dup(2)
os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
main(["batch", cases + "/panic.yaml", "--workers", "2", "--format", "jsonl", "--out", os.devnull])
os.dup2(saved, 2)
if nproc:
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
if os.geteuid() == 0:
    os.setgroups([])
    os.setgid(65534)  # nobody
    os.setuid(65534)
sys.exit(main(argv))
"""


@pytest.fixture
def public_tmp() -> Iterator[Path]:
    """A temporary directory another user can enter (pytest's are private to their owner)."""
    base = Path(tempfile.mkdtemp(prefix="caveat-faults-"))
    base.chmod(0o755)
    yield base
    for path in (base, *base.rglob("*")):
        with contextlib.suppress(OSError):
            path.chmod(0o755 if path.is_dir() else 0o644)
    shutil.rmtree(base, ignore_errors=True)


# -- signals to the parent -------------------------------------------------------------------


@pytest.mark.parametrize(
    "signum,status",
    [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)],
    ids=["SIGINT", "SIGTERM", "SIGHUP"],
)
def test_a_signal_stops_the_batch_and_leaves_nothing(tmp_path, big, batches, signum, status):
    batch = Batch(tmp_path, str(big), "--workers", "2")
    batches.append(batch)
    assert wait_until(batch.running, 30), batch.proc.poll()
    os.kill(batch.pid, signum)
    code, err = batch.finish()
    assert code == status, err
    assert "Traceback" not in err
    assert "interrupted" in err and "stopped the workers" in err and "cases:" in err
    assert "report.jsonl.partial" in " ".join(err.split())
    batch.assert_clean(partial=True)


@pytest.mark.parametrize(
    "burst,statuses",
    [((signal.SIGINT,), {130}), ((signal.SIGINT, signal.SIGTERM, signal.SIGHUP), {129, 130, 143})],
    ids=["Ctrl-C held down", "all three"],
)
def test_more_signals_during_cleanup_are_quiet(tmp_path, big, batches, burst, statuses):
    batch = Batch(tmp_path, str(big), "--workers", "2")
    batches.append(batch)
    assert wait_until(batch.running, 30)
    while batch.proc.poll() is None:  # (several can be pending at once: the lowest number wins)
        for signum in burst:
            with contextlib.suppress(ProcessLookupError):
                os.kill(batch.pid, signum)
        time.sleep(0.001)
    code, err = batch.finish()
    assert code in statuses, err
    assert "Traceback" not in err
    (said,) = [line for line in err.splitlines() if line.startswith("interrupted")]
    assert "stopped the workers" in said, err
    batch.assert_clean(partial=True)


NO_PDEATHSIG = """
import ctypes, sys
from engine.cli import main

def refuse(*args, **kwargs):
    raise OSError("no prctl here")

ctypes.CDLL = refuse  # as where PR_SET_PDEATHSIG is not to be had: end-of-file alone must do
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("script", [(), (NO_PDEATHSIG,)], ids=["pdeathsig", "end-of-file"])
def test_sigkill_to_the_parent_takes_the_workers_and_their_spools_with_it(
    tmp_path, big, batches, script
):
    batch = Batch(tmp_path, str(big), "--workers", "2", script=script)
    batches.append(batch)
    assert wait_until(batch.running, 30)
    assert wait_until(lambda: spools(batch.tmpdir))  # the workers spool their output
    os.kill(batch.pid, signal.SIGKILL)
    code, _ = batch.finish()
    assert code == -signal.SIGKILL
    assert wait_until(lambda: not group(batch.pid), 5), group(batch.pid)
    assert wait_until(lambda: not spools(batch.tmpdir), 5), spools(batch.tmpdir)
    # Nothing can remove the parent's temporary file when it is killed outright: it stays,
    # unlocked, until the next run to the same --out removes it.
    assert len(batch.temps()) == 1 and batch.report.read_text() == GOOD
    again = Batch(tmp_path, str(CASES / "panic.yaml"), "--workers", "1", "--quiet")
    batches.append(again)
    assert again.finish() == (0, "")
    assert again.temps() == []
    assert json.loads(again.report.read_text().splitlines()[0])["status"] == "pass"


# -- a worker that dies ----------------------------------------------------------------------


def test_a_killed_worker_stops_the_batch_with_one_line(tmp_path, big, batches):
    batch = Batch(tmp_path, str(big), "--workers", "2")
    batches.append(batch)
    assert wait_until(batch.running, 30)
    os.kill(min(children(batch.pid)), signal.SIGKILL)
    code, err = batch.finish()
    assert code == 2
    assert "Traceback" not in err
    assert "died (killed by SIGKILL)" in err and "error: batch worker" in err, err
    batch.assert_clean()


def test_a_fork_that_fails_is_one_line_and_leaks_nothing(tmp_path, monkeypatch, capsys):
    real_fork = os.fork
    forks: list[int] = []

    def fork() -> int:  # the second worker cannot be started
        forks.append(1)
        if len(forks) > 1:
            raise OSError(errno.EAGAIN, "Resource temporarily unavailable")
        return real_fork()

    monkeypatch.setattr(os, "fork", fork)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    (tmp_path / "out").mkdir()
    report = tmp_path / "out" / "report.jsonl"
    report.write_text(GOOD)
    args = ["batch", str(CASES), "--workers", "2", "--out", str(report)]
    assert main(args) == 2
    err = one_line(capsys.readouterr().err)
    assert err == "error: cannot start batch worker 1: Resource temporarily unavailable"
    assert wait_until(lambda: not children(os.getpid()), 5)
    assert os.listdir(tmp_path) == ["out"] and os.listdir(tmp_path / "out") == ["report.jsonl"]
    assert report.read_text() == GOOD


def test_a_process_limit_is_one_line_and_leaks_nothing(public_tmp, batches):
    """RLIMIT_NPROC, as user nobody (root has no such limit): the second worker, or the first
    one's reader thread, cannot be started."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to become nobody with a process limit of its own")
    for name in ("tmp", "out"):
        (public_tmp / name).mkdir()
        os.chown(public_tmp / name, NOBODY, NOBODY)
    script = (UNPRIVILEGED, str(CASES), "3")
    batch = Batch(public_tmp, str(CASES), "--workers", "2", script=script)
    batches.append(batch)
    code, err = batch.finish()
    assert code == 2
    line = one_line(err)
    assert line.startswith(("error: cannot start batch worker", "error: batch worker")), line
    batch.assert_clean()


def test_workers_are_never_more_than_the_chunks_nor_the_maximum(monkeypatch, capsys, tmp_path):
    real_fork = os.fork
    forks: list[int] = []

    def fork() -> int:
        forks.append(1)
        return real_fork()

    monkeypatch.setattr(os, "fork", fork)
    kb = load_knowledge_base()
    items = [{"id": f"c{i}", "conditions": ["RLS"]} for i in range(300)]
    chunks = list(run_chunks(items, kb=kb, workers=1000, output="records"))
    assert sum(chunk.size for chunk in chunks) == 300
    assert len(forks) == 5  # 300 cases in chunks of 64
    cases = tmp_path / "cases.jsonl"
    cases.write_text("".join(json.dumps(item) + "\n" for item in items))
    out = tmp_path / "r.jsonl"
    args = ["batch", str(cases), "--workers", str(MAX_WORKERS + 1), "--out", str(out)]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert f"note: --workers {MAX_WORKERS + 1} is more than the most a batch runs" in err
    assert 1 <= len(forks) - 5 <= 5  # (JSON Lines go in blocks: perhaps fewer chunks)


# -- forking while another thread evaluates ------------------------------------------------

DEADLOCK = """
import threading
from engine import evaluate, load_knowledge_base
from engine.batch import evaluate_many

kb = load_knowledge_base()
scenario = {"conditions": ["RLS", "panic disorder"]}
expected = evaluate(scenario, knowledge_base=kb)
stop = threading.Event()

def busy():
    while not stop.is_set():
        evaluate(scenario, knowledge_base=kb)

thread = threading.Thread(target=busy)
thread.start()
items = [{"id": f"c{i}", **scenario} for i in range(100)]  # two chunks: two workers
for _ in range(20):
    outcomes = list(evaluate_many(items, workers=2, knowledge_base=kb))
    assert [o.result.statements for o in outcomes] == [expected.statements] * 100
stop.set()
thread.join()
print("ok")
"""


ICD_IMPORT = """
import threading
from engine import terminology
from engine.batch import evaluate_many

thread = threading.Thread(target=terminology.icd_is_valid, args=("G40.A09",))
thread.start()  # ICD-10-CM is imported, under a lock, for seconds
while not terminology._lock.locked():
    pass
cases = [{"id": f"c{i}", "conditions": [{"code": "G40.A09", "system": "ICD-10-CM"}]}
         for i in range(100)]
outcomes = list(evaluate_many(cases, workers=2))
assert all("epilepsy-children" in [s.rule for s in o.result.undetermined] for o in outcomes)
thread.join()
print("ok")
"""


@pytest.mark.parametrize(
    "script", [DEADLOCK, ICD_IMPORT], ids=["another thread evaluates", "ICD-10-CM is imported"]
)
def test_forking_while_another_thread_holds_a_lock_does_not_hang(script):
    proc = run_script(script, timeout=60)  # a hang: a worker was forked with a lock held
    assert (proc.returncode, proc.stdout) == (0, "ok\n"), proc.stderr


# -- writes that fail ------------------------------------------------------------------------


def _file_size_limit() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (100, 100))  # less than any report


@pytest.mark.parametrize(
    "fmt,workers",
    [(fmt, "1") for fmt in FORMATS] + [("jsonl", "2")],
)
def test_a_write_that_fails_leaves_the_old_report_and_no_temporary_file(
    tmp_path, batches, fmt, workers
):
    case = str(CASES / "panic.yaml")
    batch = Batch(tmp_path, case, "--workers", workers, fmt=fmt, preexec=_file_size_limit)
    batches.append(batch)
    code, err = batch.finish()
    assert code == 2
    assert "File too large" in one_line(err)
    batch.assert_clean()


@pytest.fixture(scope="module")
def full_disk() -> Iterator[Path]:
    """A tiny tmpfs, filled up (needs root, and a container that allows mount)."""
    mount = Path(tempfile.mkdtemp(prefix="caveat-full-"))
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode:
        mount.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        for fmt in FORMATS:
            (mount / f"report.{SUFFIX[fmt]}").write_text(GOOD)
        with contextlib.suppress(OSError), open(mount / "filler", "wb") as filler:
            while True:
                filler.write(b"x" * 4096)
                filler.flush()
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)
        mount.rmdir()


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_full_disk_leaves_the_old_report_and_no_temporary_file(tmp_path, full_disk, fmt):
    report = full_disk / f"report.{SUFFIX[fmt]}"
    before = sorted(os.listdir(full_disk))
    proc = subprocess.run(
        command("batch", str(CASES / "panic.yaml"), "--format", fmt, "--out", str(report)),
        cwd=REPO,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "No space left on device" in one_line(proc.stderr)
    assert sorted(os.listdir(full_disk)) == before and report.read_text() == GOOD


def test_a_read_only_directory_is_one_line(public_tmp, batches):
    """As nobody (as root, permission checks are bypassed), or as the unprivileged user running
    the tests."""
    (public_tmp / "tmp").mkdir()
    (public_tmp / "out").mkdir()
    if os.geteuid() == 0:
        os.chown(public_tmp / "tmp", NOBODY, NOBODY)  # out/ stays root's: read-only to nobody
    else:
        (public_tmp / "out").chmod(0o555)
    batch = Batch(public_tmp, str(CASES), "--workers", "2", script=(UNPRIVILEGED, str(CASES), "0"))
    batches.append(batch)
    code, err = batch.finish()
    assert code == 2
    assert one_line(err) == f"error: {batch.report}: Permission denied"
    batch.assert_clean()


# -- a closed pipe ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_closed_pipe_ends_the_batch_quietly(tmp_path, batches, fmt):
    """As `caveat batch ... | head -1`: the reader went away; every format exits 0, silently."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = subprocess.Popen(
        command("batch", str(CASES / "panic.yaml"), "--workers", "2", "--format", fmt),
        cwd=REPO,
        env={**os.environ, "TMPDIR": str(tmpdir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    proc.stdout.close()  # before anything is written
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err.decode()) == (0, "")
    assert wait_until(lambda: not group(proc.pid), 5)
    assert spools(tmpdir) == []


# -- where --out points ----------------------------------------------------------------------


def test_an_output_directory_is_refused_before_any_work(tmp_path):
    (tmp_path / "dir").mkdir()
    proc = subprocess.Popen(  # reading standard input would wait for ever
        command("batch", "-", "--out", str(tmp_path / "dir")),
        cwd=REPO,
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 2
    assert one_line(err) == f"error: cannot write {tmp_path / 'dir'}: it is a directory"
    assert os.listdir(tmp_path) == ["dir"] and os.listdir(tmp_path / "dir") == []


def _report_lines(text: str) -> list[str]:
    return [json.loads(line)["case"] for line in text.splitlines()]


def test_a_character_device_is_written_through(tmp_path):
    for device in ("/dev/null", "/dev/stdout"):
        proc = subprocess.run(
            command(
                "batch", str(CASES / "panic.yaml"), "--format", "jsonl", "--quiet", "--out", device
            ),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (proc.returncode, proc.stderr) == (0, "")
        assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
        assert os.path.islink("/dev/stdout")
    assert _report_lines(proc.stdout)  # /dev/stdout: the pipe got the report
    log = tmp_path / "log"  # and standard output appending to a file: appended to, not replaced
    log.write_text("before\n")
    inode = log.stat().st_ino
    with log.open("ab") as appending:
        proc = subprocess.run(
            command(
                "batch", str(CASES / "panic.yaml"), "--format", "jsonl", "--out", "/dev/stdout"
            ),
            cwd=REPO,
            stdout=appending,
            stderr=subprocess.PIPE,
            timeout=60,
        )
    assert proc.returncode == 0 and log.stat().st_ino == inode
    first, *report = log.read_text().splitlines()
    assert first == "before" and _report_lines("\n".join(report))
    assert os.listdir(tmp_path) == ["log"]


def test_a_fifo_and_a_link_to_standard_output_are_written_through(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    assert main(["batch", str(CASES / "panic.yaml"), "--quiet", "--out", str(fifo)]) == 0
    reader.join(timeout=30)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and _report_lines(received[0].decode())
    link = tmp_path / "stdout"
    link.symlink_to("/proc/self/fd/1")  # standard output is a pipe here
    proc = subprocess.run(
        command(
            "batch", str(CASES / "panic.yaml"), "--format", "jsonl", "--quiet", "--out", str(link)
        ),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    assert link.is_symlink() and _report_lines(proc.stdout)
    assert sorted(os.listdir(tmp_path)) == ["fifo", "stdout"]


def test_a_symlink_to_a_report_is_kept_and_its_file_replaced(tmp_path):
    (tmp_path / "reports").mkdir()
    real = tmp_path / "reports" / "real.jsonl"
    real.write_text(GOOD)
    link = tmp_path / "latest.jsonl"
    link.symlink_to(real)
    assert main(["batch", str(CASES / "panic.yaml"), "--quiet", "--out", str(link)]) == 0
    assert link.is_symlink() and _report_lines(real.read_text())
    assert os.listdir(tmp_path / "reports") == ["real.jsonl"]


# -- the review's findings: a fork, an input, a thread, the standard streams ----------------


def run_script(script: str, *args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """`python -c SCRIPT ARGS...` in a session of its own; a hang fails the test (and leaves no
    process behind) instead of hanging it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"hung for {timeout} s")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


CACHE_LOCK = """
import threading, time
from engine import bounded
from engine.batch import evaluate_many

def hold():  # as a thread evaluating new text does, for an instant, at every cache write
    with bounded._lock:
        time.sleep(0.5)

thread = threading.Thread(target=hold)
thread.start()
while not bounded._lock.locked():
    pass
cases = [{"conditions": [f"new{i}", "panic disorder"]} for i in range(130)]  # 3 chunks
outcomes = list(evaluate_many(cases, workers=2))
assert [o.status for o in outcomes] == ["evaluated"] * 130, outcomes[0]
thread.join()
print("ok")
"""


def test_forking_while_another_thread_writes_a_cache_does_not_hang():
    done = run_script(CACHE_LOCK)
    assert (done.returncode, done.stdout, done.stderr) == (0, "ok\n", "")


UNREADABLE = """
import pickle
from engine.batch import evaluate_many
from engine.errors import BatchError
from engine.workers import Crew

class LookupFailed(Exception):  # pickles, but cannot be unpickled: __init__ wants two arguments
    def __init__(self, label, reason):
        super().__init__(label)

good = {"conditions": ["panic disorder"]}
cases = [good] * 3 + [{"conditions": [LookupFailed("foo", "t")]}] + [good] * 100
outcomes = list(evaluate_many(cases, workers=2))
assert len(outcomes) == 104
assert [o.status for o in outcomes].count("evaluated") == 103
(bad,) = [o for o in outcomes if o.status == "error"]
assert outcomes.index(bad) == 3 and "cannot be handed to a worker" in bad.problems[0], bad

crew = Crew(lambda task: task, slots=1)  # a task that reaches a worker and cannot be read
crew.send(0, pickle.dumps(LookupFailed("foo", "t")))
try:
    crew.receive(0)
except BatchError as exc:
    assert str(exc).startswith("batch worker 0 failed: cannot read a task: TypeError"), exc
    assert "\\n" not in str(exc)
else:
    raise AssertionError("no error")
finally:
    crew.kill()
print("ok")
"""


def test_an_input_that_cannot_be_unpickled_is_its_case_error_and_never_hangs():
    done = run_script(UNREADABLE)
    assert (done.returncode, done.stdout, done.stderr) == (0, "ok\n", "")


class _Refuses:
    def __reduce__(self) -> Any:
        raise RuntimeError("not today")


def test_any_failure_to_pickle_an_input_is_its_case_error():
    good = {"conditions": ["panic disorder"]}
    cases = [good] * 3 + [{"conditions": ["RLS"], "age": _Refuses()}] + [good] * 100
    outcomes = list(evaluate_many(cases, workers=2))
    assert [o.status for o in outcomes].count("evaluated") == 103
    assert outcomes[3].status == "error"
    assert (
        "cannot be handed to a worker process (not plain data: RuntimeError)"
        in (outcomes[3].problems[0])
    )


THREAD_STARTS = """
import threading
from engine.batch import evaluate_many

it = evaluate_many([{"conditions": ["panic disorder"]}] * 3000, workers=2)
first = []
thread = threading.Thread(target=lambda: first.append(next(it)))  # forks both workers, and ends
thread.start()
thread.join()
rest = list(it)
assert len(first + rest) == 3000 and {o.status for o in first + rest} == {"evaluated"}
print("ok")
"""


def test_workers_outlive_the_thread_that_started_them():
    done = run_script(THREAD_STARTS, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, "ok\n", "")


def _cli(
    *args: str, stdin: Any = subprocess.DEVNULL, stdout: Any = subprocess.PIPE, **kw: Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(*args),
        cwd=REPO,
        stdin=stdin,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        **kw,
    )


def test_version_into_a_closed_pipe_is_a_quiet_success():
    read, write = os.pipe()
    os.close(read)  # (every write fails with EPIPE, as into `| true` once true is gone)
    try:
        done = _cli("--version", stdout=write)
    finally:
        os.close(write)
    assert (done.returncode, done.stderr) == (0, "")


@pytest.mark.parametrize(
    "args,closed,said",
    [
        (("batch", str(CASES / "panic.yaml"), "--format", "jsonl"), 1, "standard output"),
        (("evaluate", str(CASES / "child-absence-seizures-acute.yaml")), 1, "standard output"),
        (("batch", "-"), 0, "standard input"),
        (("evaluate", "-"), 0, "standard input"),
    ],
    ids=["batch 1>&-", "evaluate 1>&-", "batch - <&-", "evaluate - <&-"],
)
def test_a_closed_standard_stream_is_one_line(args, closed, said):
    done = _cli(*args, preexec_fn=lambda: os.close(closed))
    assert done.returncode == 2
    assert one_line(done.stderr) == f"error: {said} is closed"


def test_a_batch_to_a_file_needs_no_standard_output(tmp_path):
    out = tmp_path / "r.jsonl"
    args = ("batch", str(CASES / "panic.yaml"), "--quiet", "--out", str(out))
    done = _cli(*args, preexec_fn=lambda: os.close(1))
    assert (done.returncode, done.stderr) == (0, "")
    assert json.loads(out.read_text().splitlines()[0])["status"] == "pass"


def test_an_ascii_terminal_gets_escapes_not_a_traceback():
    case = str(CASES / "child-absence-seizures-acute.yaml")
    done = _cli("evaluate", case, env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert (done.returncode, done.stderr) == (0, "")
    assert "\\u2022" in done.stdout and done.stdout.isascii()
