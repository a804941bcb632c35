"""The demo report as a reader sees it: opened in headless Chromium, with no console errors."""

import base64
import io
import re
import shutil
import subprocess

import pytest
from audit_runner import REPO, run_audit
from PIL import Image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000",
]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not found; install it with: apt-get install chromium"
)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    run = run_audit(root)
    assert run.report.is_file(), run.output
    profile = root / "profile"
    completed = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", run.report.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    screenshot = root / "report.png"
    subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--window-size=1400,2400",
         f"--screenshot={screenshot}", run.report.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    return completed, screenshot


def test_report_has_no_console_messages(rendered):
    completed, _ = rendered
    console = [line for line in completed.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []


def test_scorecard_is_in_rendered_page(rendered):
    completed, _ = rendered
    assert "synthgate-scorecard" in completed.stdout
    assert "RELEASE BLOCKED" in completed.stdout


def test_evidence_images_decode(rendered):
    completed, _ = rendered
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', completed.stdout)
    assert images, "no evidence image in the rendered page"
    decoded = Image.open(io.BytesIO(base64.b64decode(images[0])))
    assert decoded.size[0] > 0


def test_screenshot_is_written(rendered):
    _, screenshot = rendered
    with Image.open(screenshot) as image:
        assert image.size == (1400, 2400)
