"""The ICD-10-CM index (engine.terminology): the package's answers, without importing it.

Evaluation asks three things of ICD-10-CM: is a code valid, its description, the categories
above it. The index answers them from a SQLite file written once under the cache directory; these
tests hold it to the package on every code, and check what happens where the file cannot be
written, is damaged, or is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import simple_icd_10_cm as icd

from engine import terminology

SCRIPT = """
import json, sys
from engine import evaluate
result = evaluate({"conditions": [{"code": "G40.A09", "system": "ICD-10-CM"},
                                  {"code": "F41.0", "system": "ICD-10-CM"},
                                  {"code": "G40.A99", "system": "ICD-10-CM"}]})
print(json.dumps({"result": result.model_dump(mode="json"),
                  "imported": "simple_icd_10_cm" in sys.modules}))
"""


def evaluate_in(cache: str) -> dict:
    env = {**os.environ, "CAVEAT_CACHE_DIR": cache}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    path = tmp_path_factory.mktemp("index") / "icd.sqlite"
    terminology.build_index(path, icd)
    db = terminology._open(path)
    assert db is not None
    yield db
    db.close()


def test_the_index_answers_as_the_package_does_on_every_code():
    # (B10.0's categories are B10 twice: a block shares the category's code; kept as listed)
    codes = list(dict.fromkeys(icd.get_all_codes(True)))
    assert len(codes) > 98_000
    assert terminology._db() is not None  # (this session's index: see conftest)
    lineage, description = terminology.icd_lineage.__wrapped__, terminology.icd_description
    for given in codes + [c.replace(".", "") for c in codes[:5000]]:
        code = terminology.normalise_icd(given)  # (as the package was asked before the index)
        valid = icd.is_valid_item(code)
        assert description.__wrapped__(given) == (icd.get_description(code) if valid else None)
        above = (
            [a for a in icd.get_ancestors(code) if icd.is_category_or_subcategory(a)]
            if valid
            else []
        )
        assert lineage(given) == ((code, *above) if valid else ()), given


@pytest.mark.parametrize(
    "code", ["G40.A9", "G40.A099", "Z99.999", "G4", "G40.", "A00.00", "U07.1", "R56.9", "C7A"]
)
def test_valid_and_invalid_codes_agree_with_the_package(index, code):
    found = index.execute("SELECT 1 FROM code WHERE code = ?", (code,)).fetchone() is not None
    assert found == bool(icd.is_valid_item(code))
    assert terminology.icd_is_valid.__wrapped__(code) == bool(icd.is_valid_item(code))


def test_a_later_start_reads_the_index_and_never_imports_the_package(tmp_path):
    cache = str(tmp_path / "cache")
    first = evaluate_in(cache)
    assert first["imported"]  # (the index was written from it)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [terminology.index_path().name]
    second = evaluate_in(cache)
    assert not second["imported"]
    assert second["result"] == first["result"]
    codes = [r["codes"] for r in first["result"]["recognized"]]
    assert ["G40.A09", "G40.A0", "G40.A"] in codes
    assert first["result"]["unrecognized"][0]["suggestions"] == [
        "G40.A (Absence epileptic syndrome)"
    ]


def test_where_no_index_can_be_written_the_package_answers_the_same(tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    cache = str(tmp_path / "cache")
    assert evaluate_in(str(blocked / "cache"))["result"] == evaluate_in(cache)["result"]
    assert blocked.read_text() == "not a directory"


def test_a_damaged_index_is_written_again(tmp_path):
    cache = tmp_path / "cache"
    good = evaluate_in(str(cache))["result"]
    (index_file,) = cache.iterdir()
    whole = index_file.stat().st_size
    index_file.write_bytes(index_file.read_bytes()[: whole // 3])
    assert evaluate_in(str(cache))["result"] == good
    assert index_file.stat().st_size == whole
    assert [p.name for p in cache.iterdir()] == [index_file.name]  # (no temporary file left)


def test_the_cache_directory_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CAVEAT_CACHE_DIR", str(tmp_path / "mine"))
    assert terminology.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("CAVEAT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert terminology.cache_dir() == tmp_path / "xdg" / "caveat"
