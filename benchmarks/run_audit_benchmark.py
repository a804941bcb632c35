"""Time the whole audit on a 700 real + 7,000 generated set, cold (empty cache) and warm.

The set is built from the shared lung-CT corpus: 700 real slices in patient folders, and 7,000
generated slices made of every DCGAN, early-DCGAN and VAE sample plus horizontally flipped and
shifted DCGAN samples to reach the ImageCLEF size. Usage::

    .venv/bin/python benchmarks/run_audit_benchmark.py --corpus ../shared/data --work /tmp/bench

It prints one line per run (wall time, peak resident memory of the pytest process) and exits 0.
"""

from __future__ import annotations

import argparse
import csv
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
N_REAL = 700
N_GENERATED = 7000
SEED = 0

logger = logging.getLogger("benchmark")


def build_set(corpus: Path, work: Path) -> tuple[Path, Path]:
    """Write the benchmark folders under ``work`` (reused when already complete)."""
    real_dir = work / "real"
    generated_dir = work / "generated"
    if len(list(real_dir.rglob("*.png"))) == N_REAL and len(list(generated_dir.glob("*.png"))) == N_GENERATED:
        return real_dir, generated_dir
    shutil.rmtree(work, ignore_errors=True)
    rng = np.random.default_rng(SEED)

    with open(corpus / "ct-real" / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    chosen = sorted(rng.choice(len(rows), size=N_REAL, replace=False))
    for index in chosen:
        row = rows[index]
        target = real_dir / row["patient_id"] / Path(row["file"]).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(corpus / "ct-real" / row["file"], target)

    generated_dir.mkdir(parents=True)
    sources = []
    for folder in ("ct-generated-dcgan", "ct-generated-dcgan-early", "ct-generated-vae"):
        sources += sorted((corpus / folder).glob("gen_*.png"))
    for number, source in enumerate(sources):
        shutil.copyfile(source, generated_dir / f"{number:05d}.png")
    dcgan = sorted((corpus / "ct-generated-dcgan").glob("gen_*.png"))
    for number in range(len(sources), N_GENERATED):
        image = np.asarray(Image.open(dcgan[number % len(dcgan)]).convert("L"))
        image = np.roll(image[:, ::-1], shift=int(rng.integers(-4, 5)), axis=1)
        Image.fromarray(np.ascontiguousarray(image)).save(generated_dir / f"{number:05d}.png")
    return real_dir, generated_dir


def run_audit(real: Path, generated: Path, cache: Path, report: Path) -> tuple[float, float, int]:
    """Run the audit once; return wall seconds, peak RSS of the pytest process in MiB, exit status."""
    command = [
        "/usr/bin/time", "-f", "peak_rss_kib=%M", sys.executable, "-m", "pytest", "audits/", "-q", "-p", "no:cacheprovider",
        "--real", str(real), "--generated", str(generated), "--groups", "folder",
        f"--cache-dir={cache}", f"--html={report}",
    ]
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - started
    peak_lines = [line for line in completed.stderr.splitlines() if line.startswith("peak_rss_kib=")]
    if not peak_lines:
        raise RuntimeError(f"/usr/bin/time printed no peak memory; stderr:\n{completed.stderr[-2000:]}")
    peak_mib = int(peak_lines[-1].split("=")[1]) / 1024
    return wall, peak_mib, completed.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "data", help="the shared lung-CT corpus")
    parser.add_argument("--work", type=Path, default=Path("/tmp/synthgate-benchmark"), help="scratch folder for the set and cache")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    real, generated = build_set(arguments.corpus, arguments.work)
    cache = arguments.work / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    for label in ("cold", "warm"):
        wall, peak_mib, returncode = run_audit(real, generated, cache, arguments.work / "report" / "report.html")
        logger.info("%s: %.1f s wall, peak RSS %.0f MiB, pytest exit %d", label, wall, peak_mib, returncode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
