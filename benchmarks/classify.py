"""Benchmark: classification throughput on this machine, ViT-B-32 with random weights (the same
FLOPs as the real model), over generated 640x480 JPEGs.

    DATABASE_URL=... .venv/bin/python benchmarks/classify.py [--images 2000] [--naive 200]
        [--batch 64] [--workers 2] [--device cpu|cuda] [--json]

(a) end to end: a real run (`run_create` + the chunk task code a worker runs: DataLoader decode
    workers, forward, scoring against 365 prompts, prediction upserts, embedding cache) in a
    throwaway database, with the model already loaded (a warm worker);
(b) the ceiling: the model's forward pass alone on pre-decoded, pre-processed tensors, same
    batch size;
(c) a naive loop: open, preprocess and forward one image at a time (measured on `--naive`
    images).
Prints images/s of each and the ratios a/b (target >= 0.7) and a/c (target >= 3).
"""

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate.settings")
os.environ.setdefault("DEBUG", "1")  # a local run; the settings default to DEBUG off


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def make_images(folder: Path, n: int) -> list[str]:
    """Photo-like 640x480 JPEGs (smooth gradients plus noise), quality 90."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:480, 0:640].astype(np.float32)
    names = []
    for i in range(n):
        a, b, c = rng.uniform(0.2, 1.0, 3)
        base = np.stack([xx * a / 640, yy * b / 480, (xx + yy) * c / 1120], axis=-1) * 255
        noise = rng.normal(0, 12, (480, 640, 3))
        img = np.clip(base + noise, 0, 255).astype(np.uint8)
        name = f"img{i:05d}.jpg"
        Image.fromarray(img).save(folder / name, "JPEG", quality=90)
        names.append(name)
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--naive", type=int, default=200, help="images for the naive loop")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader decode workers")
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--device", default="")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="sieve-bench-classify-"))
    os.environ["SIEVE_MEDIA_ROOT"] = str(tmp / "media")
    os.environ["SIEVE_IMAGE_ROOTS"] = str(tmp)
    os.environ["SIEVE_CHUNK_SIZE"] = str(max(args.images, 1))
    os.environ["SIEVE_BATCH_SIZE"] = str(args.batch)
    os.environ["SIEVE_DECODE_WORKERS"] = str(args.workers)
    os.environ["SIEVE_DEVICE"] = args.device
    import django

    django.setup()
    import torch
    from django.conf import settings
    from PIL import Image

    from annotate.datasets.models import Dataset, Item
    from annotate.taxonomies.models import Label, Taxonomy
    from benchmarks.common import throwaway_database
    from classifier import engine
    from classifier.services import run_create
    from classifier.tasks import chunk_process

    try:
        with throwaway_database("classify"):
            folder = tmp / "images"
            folder.mkdir()
            started = time.perf_counter()
            names = make_images(folder, args.images)
            log(f"{args.images} JPEGs 640x480 generated in {time.perf_counter() - started:.1f} s")
            dataset = Dataset.objects.create(name="bench-classify", image_root=str(folder))
            Item.objects.bulk_create(
                Item(dataset=dataset, external_id=n, image_path=n, caption="") for n in names
            )
            taxonomy = Taxonomy.objects.create(name="places365-bench")
            data = ROOT / "annotate" / "taxonomies" / "data" / "places365.txt"
            keys = [line.split()[0] for line in data.read_text().splitlines() if line.strip()]
            Label.objects.bulk_create(
                Label(
                    taxonomy=taxonomy, key=k, name=k.split("/", 2)[2].replace("_", " "), position=i
                )
                for i, k in enumerate(keys)
            )
            loaded = engine.get_model(
                args.model, "", device=args.device or None,
                cpu_precision=settings.SIEVE_CPU_PRECISION,
            )  # fmt: skip
            device = str(loaded.device)
            log(f"{args.model} (random weights) on {device}, {torch.get_num_threads()} threads")

            # (b) forward-only ceiling on pre-decoded tensors
            tensors = torch.stack(
                [loaded.preprocess(Image.open(folder / n).convert("RGB")) for n in names]
            )
            with torch.inference_mode(), loaded.autocast:
                loaded.model.encode_image(tensors[: args.batch].to(loaded.device))  # warm-up
            started = time.perf_counter()
            with torch.inference_mode(), loaded.autocast:
                for start in range(0, len(tensors), args.batch):
                    batch = tensors[start : start + args.batch].to(loaded.device)
                    loaded.model.encode_image(batch, normalize=True).float().cpu()
            forward = args.images / (time.perf_counter() - started)
            log(f"(b) forward only: {forward:.1f} images/s")
            del tensors

            # (a) end to end: a real run through the chunk task code
            started = time.perf_counter()
            run = run_create(dataset=dataset, taxonomy=taxonomy, model=args.model, send=False,
                             random_weights=True)  # fmt: skip
            for chunk in run.chunks.order_by("index"):
                chunk_process(chunk_id=chunk.pk, worker="benchmark")
            elapsed = time.perf_counter() - started
            run.refresh_from_db()
            assert run.status == "succeeded", (run.status, run.error)
            assert run.predictions.count() == args.images
            end_to_end = args.images / elapsed
            log(f"(a) end to end: {end_to_end:.1f} images/s")

            # (c) naive loop: one image at a time, decoded in this process, as plain open_clip code
            # does it (no autocast); (c') the same loop in the engine's precision, to show how much
            # of the gain is batching + parallel decode rather than precision.
            subset = names[: args.naive]

            def naive_loop(precision) -> float:
                started = time.perf_counter()
                with torch.inference_mode(), precision:
                    for n in subset:
                        x = loaded.preprocess(Image.open(folder / n).convert("RGB"))[None]
                        loaded.model.encode_image(x.to(loaded.device), normalize=True).float().cpu()
                return len(subset) / (time.perf_counter() - started)

            naive = naive_loop(contextlib.nullcontext())
            log(f"(c) naive loop: {naive:.1f} images/s")
            naive_same = naive_loop(loaded.autocast)
            log(f"(c') naive loop in the engine's precision: {naive_same:.1f} images/s")

            result = {
                "model": args.model,
                "device": device,
                "images": args.images,
                "naive_images": len(subset),
                "batch": args.batch,
                "decode_workers": args.workers,
                "end_to_end_images_per_s": round(end_to_end, 2),
                "forward_only_images_per_s": round(forward, 2),
                "naive_images_per_s": round(naive, 2),
                "naive_same_precision_images_per_s": round(naive_same, 2),
                "precision": "bf16"
                if engine.cpu_bf16(loaded.cpu_precision) and device == "cpu"
                else "default",
                "ratio_end_to_end_vs_forward": round(end_to_end / forward, 3),
                "ratio_end_to_end_vs_naive": round(end_to_end / naive, 2),
            }
            print(
                f"{args.model} on {device}, {args.images} images 640x480, batch {args.batch}, "
                f"{args.workers} decode workers:\n"
                f"  (a) end to end {end_to_end:.1f} images/s\n"
                f"  (b) forward only {forward:.1f} images/s\n"
                f"  (c) naive loop {naive:.1f} images/s ({len(subset)} images)\n"
                f"  (c') naive loop, engine precision {naive_same:.1f} images/s\n"
                f"  a/b = {end_to_end / forward:.2f} (target >= 0.7), "
                f"a/c = {end_to_end / naive:.2f} (target >= 3), "
                f"a/c' = {end_to_end / naive_same:.2f}"
            )
            if args.json:
                print(json.dumps(result))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
