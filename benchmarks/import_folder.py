"""Benchmark: import a generated folder of small JPEGs and print items/s.

    .venv/bin/python benchmarks/import_folder.py [--count 20000] [--folder DIR]

The images are generated once and cached (default: $TMPDIR/sieve-bench-images/<count>). The
import runs against a throwaway SQLite database in the cache folder unless DATABASE_URL is set
(then it uses that database and deletes the benchmark dataset afterwards). The baseline is the
bare minimum any importer must do, measured in the same run: `os.scandir` plus
`PIL.Image.open(...).size` for every file, with no database.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def generate(folder: Path, count: int) -> float:
    """Write `count` small JPEGs in subfolders of 1000 (cached: skipped when complete)."""
    from PIL import Image, ImageDraw

    marker = folder / ".complete"
    if marker.exists():
        return 0.0
    started = time.perf_counter()
    for n in range(count):
        sub = folder / f"{n // 1000:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        image = Image.new("RGB", (64, 48), ((n * 37) % 256, (n * 91) % 256, (n * 13) % 256))
        ImageDraw.Draw(image).ellipse([n % 32, 8, n % 32 + 24, 40], fill=(255, 255, 255))
        image.save(sub / f"{n:06d}.jpg", quality=80)
    marker.touch()
    return time.perf_counter() - started


def baseline(folder: Path) -> tuple[int, float]:
    from PIL import Image

    started = time.perf_counter()
    n = 0
    stack = [folder]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir():
                    stack.append(Path(entry.path))
                elif entry.name.endswith(".jpg"):
                    with Image.open(entry.path) as im:
                        im.size  # noqa: B018 - the header read is the point
                    n += 1
    return n, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--folder", type=Path)
    args = parser.parse_args()
    cache = Path(tempfile.gettempdir()) / "sieve-bench-images"
    folder = (args.folder or cache / str(args.count)).resolve()
    generated = generate(folder, args.count)

    os.environ["SIEVE_IMAGE_ROOTS"] = str(folder.parent)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate.settings")
    os.environ.setdefault("DEBUG", "1")  # a local run; the settings default to DEBUG off
    own_db = "DATABASE_URL" not in os.environ
    if own_db:
        db = cache / f"bench-{os.getpid()}.sqlite3"
        os.environ["DATABASE_URL"] = f"sqlite:///{db}"
    import django

    django.setup()
    from django.core.management import call_command

    from annotate.datasets.importers import dataset_import
    from annotate.datasets.models import Dataset

    call_command("migrate", verbosity=0)
    name = f"bench-{os.getpid()}"
    try:
        base_n, base_s = baseline(folder)
        started = time.perf_counter()
        first = dataset_import(name=name, folder=folder)
        first_s = time.perf_counter() - started
        started = time.perf_counter()
        second = dataset_import(name=name, folder=folder)  # re-import: all updates
        second_s = time.perf_counter() - started
    finally:
        Dataset.objects.filter(name=name).delete()
        if own_db:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)

    assert first.images == base_n == args.count
    assert first.unreadable == 0
    assert second.updated == args.count
    result = {
        "count": args.count,
        "database": django.db.connection.vendor,
        "generate_s": round(generated, 2),
        "baseline_items_per_s": round(base_n / base_s),
        "import_items_per_s": round(first.images / first_s),
        "reimport_items_per_s": round(second.images / second_s),
        "import_vs_baseline": round((first.images / first_s) / (base_n / base_s), 3),
    }
    print(
        f"{args.count} JPEGs on {result['database']}: import {result['import_items_per_s']:,} "
        f"items/s, re-import {result['reimport_items_per_s']:,} items/s; baseline (scandir + "
        f"Image.open header) {result['baseline_items_per_s']:,} items/s; "
        f"ratio {result['import_vs_baseline']}"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
