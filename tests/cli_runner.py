"""Running `python -m dstl ...` as a user runs it, for the command-line tests.

Not a test module: the tests under tests/cli/ and tests/synthetic/ import it.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import dstl

REPO = Path(__file__).resolve().parents[1]
#: The folder holding the `dstl` package this test run imports: the checkout, or the site-packages
#: of the installed wheel when the suite runs as CI runs it (scripts/test.sh).
PACKAGE_ROOT = Path(dstl.__file__).resolve().parents[1]


def python_env(**extra: str) -> dict[str, str]:
    """The environment for a Python subprocess that must import the same `dstl` as the tests do
    (PYTHONPATH = `PACKAGE_ROOT`, whatever the subprocess's working directory), plus `extra`."""
    return {**os.environ, "PYTHONPATH": str(PACKAGE_ROOT), **extra}


def dstl(*args) -> subprocess.CompletedProcess:
    """Run `python -m dstl ARGS` in the repository; stdout/stderr decoded with their \\r kept."""
    res = subprocess.run([sys.executable, "-m", "dstl", *map(str, args)], cwd=REPO,
                         env=python_env(), capture_output=True, timeout=300)
    res.stdout, res.stderr = res.stdout.decode(), res.stderr.decode()  # (text=True turns \r into \n)
    return res


def error_line(res: subprocess.CompletedProcess, one_line: bool = True, exit_code: int | None = None) -> str:
    """The message a failed command printed last (progress-bar redraws stripped).

    Checks that it failed (non-zero exit, or exactly `exit_code`), printed no traceback, and that
    its message starts with "error: " (and, with `one_line`, is the only line on stderr).
    """
    failed = res.returncode != 0 if exit_code is None else res.returncode == exit_code
    assert failed, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr
    lines = [ln.split("\r")[-1] for ln in res.stderr.split("\n")]  # not splitlines(): it splits at \r
    lines = [ln for ln in lines if ln.strip()]
    if one_line:
        assert len(lines) == 1, res.stderr
    assert lines[-1].startswith("error: ")
    return lines[-1]


def screen(text: str) -> list[str]:
    """The lines a terminal shows after printing `text`: carriage returns, newlines and the cursor-up
    sequence (ESC [ n A) that tqdm uses for nested bars applied; other escape sequences dropped."""
    rows: list[list[str]] = [[]]
    row = col = 0
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\x1b":
            match = re.match(r"\x1b\[(\d*)([A-Za-z])", text[i:])
            if match:
                if match.group(2) == "A":
                    row = max(0, row - int(match.group(1) or 1))
                i += match.end()
                continue
        if char == "\n":
            row, col = row + 1, 0
            while len(rows) <= row:
                rows.append([])
        elif char == "\r":
            col = 0
        else:
            line = rows[row]
            line.extend(" " * (col + 1 - len(line)))
            line[col] = char
            col += 1
        i += 1
    return ["".join(r).rstrip() for r in rows]


def assert_error_on_its_own_line(stderr: str) -> str:
    """The error line of a failed command's raw stderr, as a terminal shows it: it must start at
    column 0 with "error: ", hold nothing else (no progress-bar text before or after it), and be the
    last thing drawn (no bar redrawn below it)."""
    shown = screen(stderr)
    hits = [k for k, line in enumerate(shown) if "error: " in line]
    assert len(hits) == 1, shown
    line = shown[hits[0]]
    assert line.startswith("error: "), shown
    assert not any(shown[hits[0] + 1:]), shown
    assert line == stderr[stderr.index("error: "):].rstrip("\n"), shown
    return line
