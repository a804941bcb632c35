"""Measure embedding throughput and peak memory of each built-in encoder on real CT slices.

Each encoder embeds the same slices of the shared lung-CT corpus (batch size 32) with 1 and with
2 torch threads, each run in a fresh process so that its peak resident memory is its own. An
encoder whose real weights are not found here runs on randomly initialised weights of the same
architecture, written to a temporary folder first. The speed and memory of a forward pass do
not depend on the weight values, and the results mark which runs used random weights. Usage::

    .venv/bin/python benchmarks/encoders.py --corpus ../shared/data [--images 128] [--repeats 2] [--write]

It logs one line per run. With ``--write`` it replaces the section "Embedding throughput" at
the end of benchmarks/README.md with the results table.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
README = REPO / "benchmarks" / "README.md"
SECTION = "## Embedding throughput"
ENCODERS = ("efficientnet_lite0", "resnext101_32x8d", "biomedclip")
THREADS = (1, 2)
BATCH_SIZE = 32
SEED = 0

# The model and preprocessing parts of BiomedCLIP's open_clip_config.json in the hub repository
# microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224; only the image tower is built.
BIOMEDCLIP_CONFIG = {
    "model_cfg": {
        "embed_dim": 512,
        "vision_cfg": {
            "timm_model_name": "vit_base_patch16_224",
            "timm_model_pretrained": False,
            "timm_pool": "",
            "timm_proj": "linear",
            "image_size": 224,
        },
        "text_cfg": {
            "hf_model_name": "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract",
            "hf_tokenizer_name": "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract",
            "hf_proj_type": "mlp",
            "hf_pooler_type": "cls_last_hidden_state_pooler",
            "context_length": 256,
        },
    },
    "preprocess_cfg": {
        "mean": [0.48145466, 0.4578275, 0.40821073],
        "std": [0.26862954, 0.26130258, 0.27577711],
    },
}

logger = logging.getLogger("benchmark")


def pick_slices(corpus: Path, count: int) -> np.ndarray:
    """Decode ``count`` slices of ct-real chosen with a fixed seed."""
    files = sorted((corpus / "ct-real").rglob("*.png"))
    if len(files) < count:
        raise ValueError(f"--images must be at most the {len(files)} slices in {corpus / 'ct-real'}; got {count}")
    chosen = np.random.default_rng(SEED).choice(len(files), size=count, replace=False)
    return np.stack([np.asarray(Image.open(files[index]).convert("L")) for index in sorted(chosen)])


def random_weights(encoder: str, folder: Path) -> Path:
    """Write randomly initialised weights of ``encoder``'s architecture; return the weights path."""
    import torch

    torch.manual_seed(SEED)
    if encoder == "resnext101_32x8d":
        from torchvision.models import resnext101_32x8d

        path = folder / "resnext101_32x8d-random.pth"
        torch.save(resnext101_32x8d(weights=None).state_dict(), path)
        return path

    from open_clip.model import _build_vision_tower

    model_cfg = BIOMEDCLIP_CONFIG["model_cfg"]
    visual = _build_vision_tower(model_cfg["embed_dim"], model_cfg["vision_cfg"])
    path = folder / "biomedclip-random"
    path.mkdir()
    (path / "open_clip_config.json").write_text(json.dumps(BIOMEDCLIP_CONFIG))
    torch.save({f"visual.{key}": value for key, value in visual.state_dict().items()}, path / "open_clip_pytorch_model.bin")
    return path


def measure(encoder: str, threads: int, images_path: Path, weights: Path | None, repeats: int) -> dict:
    """Run one measurement in this process; return its numbers, with the fastest of ``repeats`` passes."""
    from synthgate.encoders import get_encoder

    load = os.getloadavg()[0]
    images = np.load(images_path)
    params = {"batch_size": BATCH_SIZE, "threads": threads}
    if weights is not None:
        params["weights"] = weights

    started = time.perf_counter()
    model = get_encoder(encoder, **params)
    model.transform(images[:1])
    ready = time.perf_counter() - started

    # Other jobs on a shared machine only ever slow a pass down, so the fastest pass is kept.
    seconds = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        embeddings = model.transform(images)
        seconds = min(seconds, time.perf_counter() - started)

    return {
        "encoder": encoder,
        "threads": threads,
        "images": len(images),
        "dimension": int(embeddings.shape[1]),
        "load_seconds": ready,
        "seconds": seconds,
        "images_per_second": len(images) / seconds,
        "load": load,
        # ru_maxrss is in KiB on Linux.
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_child(encoder: str, threads: int, images_path: Path, weights: Path | None, repeats: int) -> dict:
    command = [
        sys.executable, __file__, "--child", encoder, "--threads", str(threads), "--images-file", str(images_path),
        "--repeats", str(repeats),
    ]
    if weights is not None:
        command += ["--weights", str(weights)]
    # OMP_NUM_THREADS would cap torch below --threads; the encoder sets its threads itself.
    environment = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=environment)
    if completed.returncode != 0:
        raise RuntimeError(f"{encoder} with {threads} threads failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def locate_real_weights(encoder: str) -> bool:
    """Return True when ``encoder`` finds real weights here."""
    from synthgate.encoders import WeightsNotFoundError, get_encoder

    try:
        get_encoder(encoder)
    except WeightsNotFoundError:
        return False
    return True


def results_table(results: list[dict], random: set[str]) -> str:
    lines = [
        "| encoder | weights | dimension | threads | images/s | load + first image | peak RSS | load |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in results:
        weights = "random (real ones not on this machine)" if row["encoder"] in random else "real"
        lines.append(
            f"| `{row['encoder']}` | {weights} | {row['dimension']} | {row['threads']} | "
            f"{row['images_per_second']:.1f} | {row['load_seconds']:.1f} s | {row['peak_rss_mib']:.0f} MiB | "
            f"{row['load']:.1f} |"
        )
    return "\n".join(lines)


def write_section(table: str, count: int, repeats: int) -> None:
    import torch

    text = README.read_text()
    if SECTION in text:
        text = text[: text.index(SECTION)].rstrip() + "\n"
    section = f"""
{SECTION}

`encoders.py` embeds {count} slices of `ct-real` (chosen with seed {SEED}) with each built-in
encoder, batch size {BATCH_SIZE}, with 1 and with 2 torch threads, each run in a fresh process:

```bash
.venv/bin/python benchmarks/encoders.py --corpus ../shared/data --images {count} --repeats {repeats} --write
```

"images/s" is the fastest of {repeats} passes over the slices. It excludes building the model
and loading the weights, which "load + first image" times: the encoder's construction, weights
hashing included, and the embedding of one slice.
"Peak RSS" is the process's maximum resident memory, imports included (torch alone is about
500 MiB). Weights marked random are randomly initialised weights of the same architecture,
because the real ones are not on this machine. Speed and memory do not depend on the values.
"Load" is the 1-minute load average when the run started, which includes the tail of the run
before it.

Measured {date.today().isoformat()}: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}.

{table}
"""
    README.write_text(text + section)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=REPO / ".." / "shared" / "data", help="folder holding ct-real")
    parser.add_argument("--images", type=int, default=128, help="number of slices to embed (default 128)")
    parser.add_argument("--repeats", type=int, default=2, help="passes over the slices per run; the fastest counts (default 2)")
    parser.add_argument("--write", action="store_true", help="replace the section in benchmarks/README.md")
    parser.add_argument("--child", choices=ENCODERS, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--images-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--weights", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    for label, value in (("--images", arguments.images), ("--repeats", arguments.repeats)):
        if value < 1:
            parser.error(f"{label} must be a positive integer; got {value}")

    if arguments.child:
        result = measure(arguments.child, arguments.threads, arguments.images_file, arguments.weights, arguments.repeats)
        sys.stdout.write(json.dumps(result) + "\n")
        return 0

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with tempfile.TemporaryDirectory(prefix="synthgate-encoders-") as temporary:
        folder = Path(temporary)
        images_path = folder / "slices.npy"
        np.save(images_path, pick_slices(arguments.corpus, arguments.images))

        results, random = [], set()
        for encoder in ENCODERS:
            weights = None
            if not locate_real_weights(encoder):
                logger.info("%s: no real weights here; writing random weights of the same architecture", encoder)
                weights = random_weights(encoder, folder)
                random.add(encoder)
            for threads in THREADS:
                row = run_child(encoder, threads, images_path, weights, arguments.repeats)
                logger.info(
                    "%s, %d threads: %.1f images/s, load %.1f s, peak RSS %.0f MiB",
                    encoder, threads, row["images_per_second"], row["load_seconds"], row["peak_rss_mib"],
                )
                results.append(row)

    table = results_table(results, random)
    logger.info("\n%s", table)
    if arguments.write:
        write_section(table, arguments.images, arguments.repeats)
        logger.info("wrote the section %r of %s", SECTION, README)
    return 0


if __name__ == "__main__":
    sys.exit(main())
