"""Run ``pytest audits/`` in a subprocess, the way a user does, and read what it wrote."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@dataclass
class AuditRun:
    returncode: int
    output: str
    report: Path
    summary_path: Path

    @property
    def summary(self) -> dict:
        return json.loads(self.summary_path.read_text())

    def verdict(self, label: str) -> str:
        """Return the verdict of the check labelled ``check[features-or-role]``."""
        return self.check(label)["verdict"]

    def check(self, label: str) -> dict:
        """Return the summary entry labelled ``check[features-or-role]`` (or ``check`` alone)."""
        for check in self.summary["checks"]:
            qualifier = check["features"] or check["role"]
            if (f"{check['name']}[{qualifier}]" if qualifier else check["name"]) == label:
                return check
        raise KeyError(f"{label} not in summary; checks: {[c['name'] for c in self.summary['checks']]}")


def run_audit(
    tmp_path: Path,
    *arguments: str,
    cache_dir: Path | None = None,
    manifold: bool = False,
    python_prelude: str | None = None,
) -> AuditRun:
    """Run the audit with ``arguments`` and the report under ``tmp_path``.

    The manifold view is left out unless ``manifold`` is True, because UMAP compiles for about
    30 s in every new process. ``python_prelude`` is Python code run in the subprocess before
    pytest starts (for example to hide optional packages).
    """
    report = tmp_path / "report" / "report.html"
    pytest_arguments = [
        "audits/", "-p", "no:cacheprovider", "-q",
        f"--html={report}", f"--cache-dir={cache_dir or tmp_path / 'cache'}", *arguments,
    ]
    if not manifold:
        pytest_arguments.append("--no-manifold")
    if python_prelude is None:
        command = [sys.executable, "-m", "pytest", *pytest_arguments]
    else:
        launcher = f"{python_prelude}\nimport sys, pytest\nsys.exit(pytest.main(sys.argv[1:]))"
        command = [sys.executable, "-c", launcher, *pytest_arguments]
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)
    return AuditRun(
        returncode=completed.returncode,
        output=completed.stdout + completed.stderr,
        report=report,
        summary_path=report.parent / "summary.json",
    )
