"""The README's promises: the two commands, and its argument tables of
`krp.LSTM` against the real signature (names and defaults)."""

import inspect
import pathlib
import re

import keras_rnn_plus as krp

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()

MAIN_JOB = (
    'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[test]"'
    " && python tutorials/01_drop_in_lstm.py"
)
TEST_COMMAND = "pytest"


def _code_blocks(text):
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def test_readme_gives_the_two_commands():
    commands = [
        line.strip() for b in _code_blocks(README) for line in b.splitlines()
    ]
    assert MAIN_JOB in commands
    assert TEST_COMMAND in commands
    assert (ROOT / "tutorials" / "01_drop_in_lstm.py").is_file()


def test_ci_runs_the_readme_test_command():
    lines = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert "set -euo pipefail" in lines
    assert lines[-1] == TEST_COMMAND
    assert 'pip install -e ".[test]"' in lines


def _table_rows(text):
    """`name -> default` from README table rows `| `name` | default | ...`."""
    rows = {}
    for match in re.finditer(r"^\| `(\w+)` \| ([^|]*) \|", text, flags=re.M):
        rows[match.group(1)] = match.group(2).strip()
    return rows


def test_argument_tables_match_signature():
    section = README.split("## Arguments of `krp.LSTM`")[1].split("\n## ")[0]
    rows = _table_rows(section)
    params = inspect.signature(krp.LSTM).parameters
    documented = set(rows)
    expected = {n for n, p in params.items() if p.kind != p.VAR_KEYWORD}
    assert expected <= documented, f"not in README: {expected - documented}"
    assert documented <= expected, f"not in krp.LSTM: {documented - expected}"
    for name, shown in rows.items():
        default = params[name].default
        if default is inspect.Parameter.empty:
            assert shown == "(required)", name
        else:
            want = (
                f'`"{default}"`'
                if isinstance(default, str)
                else (f"`{default!r}`")
            )
            assert shown == want, f"{name}: README {shown}, code {want}"
