"""Every `tutorials/*.py` script runs with `--quick` and passes its checks.

A tutorial script takes `--quick` (runs in seconds) and `--out DIR`, prints
`CHECK <name>: PASS` or `FAIL` lines, and exits non-zero when a check
fails. The files each script must write are listed in `EXPECTED_OUTPUTS`;
a script not listed there must write at least one file. Listed PNG files
must be PNG images; a listed `summary.json` must say `"quick": true` and
record no failed check.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

TUTORIALS = pathlib.Path(__file__).resolve().parent.parent / "tutorials"
SCRIPTS = sorted(TUTORIALS.glob("[0-9]*.py"))

EXPECTED_OUTPUTS = {
    "01_drop_in_lstm.py": [
        "training.png",
        "summary.json",
        "model.keras",
        "saved_model/saved_model.pb",
    ],
    "02_char_language_model.py": ["loss.png", "samples.txt", "summary.json"],
    "03_seq2seq_addition.py": ["training.png", "summary.json"],
    "04_bidirectional_tagging.py": ["accuracy.png", "summary.json"],
    "05_peephole_timing.py": ["timing.png", "summary.json"],
    "06_variant_search_space.py": [
        "variants.png",
        "final_mse.png",
        "summary.json",
    ],
    "07_inside_the_cell.py": [
        "gates.png",
        "memory_unit.png",
        "summary.json",
    ],
}


def test_tutorials_are_found():
    assert set(EXPECTED_OUTPUTS) <= {s.name for s in SCRIPTS}


# Every tutorial, in the default run (about a minute for all seven).
@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_tutorial_runs_quick(script, tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    proc = subprocess.run(
        [sys.executable, str(script), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,  # the script must not depend on the working directory
        timeout=300,
    )
    log = f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    assert proc.returncode == 0, log
    assert "FAIL" not in proc.stdout, log
    assert "PASS" in proc.stdout, log
    expected = EXPECTED_OUTPUTS.get(script.name)
    if expected is None:
        assert any(p.is_file() for p in out.rglob("*")), "no output files"
    for name in expected or []:
        path = out / name
        assert path.is_file() and path.stat().st_size > 0, f"missing {name}"
        if name.endswith(".png"):
            assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n"), name
        if name == "summary.json":
            summary = json.loads(path.read_text())
            assert summary["quick"] is True
            checks = summary.get("checks", {})
            assert checks, "summary.json records no checks"
            failed = [k for k, ok in checks.items() if not ok]
            assert not failed, f"failed checks in summary.json: {failed}"
            # one printed CHECK line per recorded check, all passed
            printed = [line for line in proc.stdout.splitlines()
                       if line.startswith("CHECK ")]
            assert len(printed) == len(checks), log
            assert all(": PASS" in line for line in printed), log
