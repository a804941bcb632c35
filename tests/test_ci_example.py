"""The example CI workflow: its audit command must run as written and write what it uploads."""

import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = REPO / "examples" / "github-actions-release-gate.yml"


def _steps():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    job = workflow["jobs"]["audit"]
    return job["env"], {step.get("name"): step for step in job["steps"]}


def test_workflow_has_gate_and_upload():
    _, steps = _steps()
    assert "Run the release gate" in steps
    assert steps["Upload the report"]["if"] == "always()"
    assert steps["Upload the report"]["with"]["path"] == "${{ env.SYNTHGATE_REPORT }}"


def test_install_step_matches_readme():
    _, steps = _steps()
    readme = (REPO / "README.md").read_text()
    assert ".venv/bin/pip install -e ." in steps["Install synthgate"]["run"]
    assert ".venv/bin/pip install -e ." in readme


def test_gate_command_runs_on_demo(tmp_path):
    env, steps = _steps()
    command = steps["Run the release gate"]["run"]
    # Run the step as the runner would, with this test's interpreter in place of .venv/bin.
    command = command.replace(".venv/bin/pytest", f"{sys.executable} -m pytest -p no:cacheprovider")
    variables = dict(os.environ)
    variables.update(env)
    variables["SYNTHGATE_REAL"] = str(REPO / "fixtures" / "demo" / "real")
    variables["SYNTHGATE_GENERATED"] = str(REPO / "fixtures" / "demo" / "generated")
    variables["SYNTHGATE_REPORT"] = str(tmp_path / "report")
    command = command.replace("--cache-dir .synthgate-cache", f"--cache-dir {tmp_path / 'cache'}")

    completed = subprocess.run(["bash", "-c", command], cwd=REPO, env=variables, capture_output=True, text=True)

    assert completed.returncode == 1, completed.stdout[-3000:] + completed.stderr[-3000:]
    for name in ("report.html", "summary.json", "junit.xml"):
        assert (tmp_path / "report" / name).is_file(), name
