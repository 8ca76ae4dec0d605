"""Running `python -m dstl ...` as a user runs it, for the command-line tests.

Not a test module: the tests under tests/cli/ and tests/synthetic/ import it.
"""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def dstl(*args) -> subprocess.CompletedProcess:
    """Run `python -m dstl ARGS` in the repository; stdout/stderr decoded with their \\r kept."""
    res = subprocess.run([sys.executable, "-m", "dstl", *map(str, args)], cwd=REPO,
                         capture_output=True, timeout=300)
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
