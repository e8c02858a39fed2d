"""The demo: users, a generated captioned image dataset, Places365, a tiny offline model, and
the ITR dataset with a review study under way (annotate/itr/demo.py).

Images are drawn with Pillow (deterministic from a seed): each one is a small scene (beach,
forest, city street, church, bakery, mountain, lake, desert, swimming pool, parking lot) in
varied colours and shapes, stored InstaCities-style as `<city>/<n>.jpg` with a sidecar
`<city>/<n>.txt` caption, so the demo exercises the real import path.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from PIL import Image, ImageDraw

from annotate.datasets.access import ensure_groups, membership_set
from annotate.datasets.importers import ImportResult, dataset_import
from annotate.datasets.models import Dataset, Role

DEMO_DATASET = "demo"
DEMO_TAXONOMY = "places365"
# Fixed, printed demo passwords: `seed_demo` refuses to run with DEBUG off unless --force.
DEMO_USERS = [
    ("admin", "sieve-admin-demo", Role.ADMIN),
    ("lead", "sieve-lead-demo", Role.LEAD),
    ("annotator1", "sieve-annotator1-demo", Role.ANNOTATOR),
    ("annotator2", "sieve-annotator2-demo", Role.ANNOTATOR),
]
CITIES = ["newyork", "london", "sydney", "miami", "chicago"]

Palette = tuple[int, int, int]


def _jitter(rng: random.Random, colour: Palette, amount: int = 40) -> Palette:
    r, g, b = (max(0, min(255, c + rng.randint(-amount, amount))) for c in colour)
    return (r, g, b)


def _sky(draw: ImageDraw.ImageDraw, rng: random.Random, w: int, h: int, horizon: int) -> None:
    top = _jitter(rng, rng.choice([(110, 170, 235), (250, 160, 90), (40, 50, 110)]))
    for y in range(horizon):
        f = y / max(horizon, 1)
        draw.line([(0, y), (w, y)], fill=tuple(int(c * (1 - 0.3 * f)) for c in top))


def _beach(d, rng, w, h):
    _sky(d, rng, w, h, h // 2)
    d.rectangle([0, h // 2, w, h * 2 // 3], fill=_jitter(rng, (30, 110, 190)))
    d.rectangle([0, h * 2 // 3, w, h], fill=_jitter(rng, (235, 210, 150)))
    x = rng.randint(10, w - 30)
    d.ellipse([x, 10, x + 24, 34], fill=(255, 230, 90))


def _forest(d, rng, w, h):
    _sky(d, rng, w, h, h // 3)
    d.rectangle([0, h // 3, w, h], fill=_jitter(rng, (60, 100, 40)))
    for _ in range(rng.randint(6, 14)):
        x, y = rng.randint(-10, w), rng.randint(h // 4, h - 20)
        size = rng.randint(15, 35)
        d.polygon([(x, y - size), (x - size // 2, y + size // 2), (x + size // 2, y + size // 2)],
                  fill=_jitter(rng, (20, 110, 30)))  # fmt: skip


def _street(d, rng, w, h):
    _sky(d, rng, w, h, h // 2)
    x = 0
    while x < w:
        bw = rng.randint(18, 40)
        top = rng.randint(10, h // 2)
        d.rectangle([x, top, x + bw, h * 3 // 4], fill=_jitter(rng, (120, 120, 130), 50))
        for wy in range(top + 5, h * 3 // 4 - 5, 10):
            d.rectangle([x + 4, wy, x + 8, wy + 4], fill=(250, 230, 120))
        x += bw + 2
    d.rectangle([0, h * 3 // 4, w, h], fill=(60, 60, 60))
    d.line([(0, h * 7 // 8), (w, h * 7 // 8)], fill=(240, 240, 240), width=2)


def _church(d, rng, w, h):
    _sky(d, rng, w, h, h * 2 // 3)
    d.rectangle([0, h * 2 // 3, w, h], fill=_jitter(rng, (90, 140, 70)))
    cx = w // 2 + rng.randint(-20, 20)
    wall = _jitter(rng, (200, 190, 170))
    d.rectangle([cx - 35, h // 3, cx + 35, h * 5 // 6], fill=wall)
    roof = _jitter(rng, (140, 50, 40))
    d.polygon([(cx - 42, h // 3), (cx, h // 8), (cx + 42, h // 3)], fill=roof)
    d.rectangle([cx - 3, h // 8 - 18, cx + 3, h // 8], fill=(60, 60, 60))
    d.rectangle([cx - 10, h // 8 - 12, cx + 10, h // 8 - 7], fill=(60, 60, 60))
    d.pieslice([cx - 10, h * 5 // 6 - 30, cx + 10, h * 5 // 6 - 10], 180, 360, fill=(70, 40, 30))


def _bakery(d, rng, w, h):
    d.rectangle([0, 0, w, h], fill=_jitter(rng, (150, 100, 60)))
    d.rectangle([0, h * 2 // 3, w, h], fill=_jitter(rng, (110, 70, 40)))
    for _ in range(rng.randint(8, 16)):
        x, y = rng.randint(0, w - 30), rng.randint(h // 3, h - 20)
        d.ellipse([x, y, x + rng.randint(18, 34), y + rng.randint(10, 18)],
                  fill=_jitter(rng, (210, 150, 70)))  # fmt: skip


def _mountain(d, rng, w, h):
    _sky(d, rng, w, h, h)
    for _ in range(rng.randint(2, 4)):
        x = rng.randint(0, w)
        peak = rng.randint(h // 6, h // 2)
        d.polygon([(x - 80, h), (x, peak), (x + 80, h)], fill=_jitter(rng, (110, 110, 120)))
        d.polygon([(x - 12, peak + 15), (x, peak), (x + 12, peak + 15)], fill=(250, 250, 250))


def _lake(d, rng, w, h):
    _sky(d, rng, w, h, h // 2)
    d.rectangle([0, h // 2, w, h], fill=_jitter(rng, (40, 90, 150)))
    for _ in range(6):
        y = rng.randint(h // 2 + 5, h - 5)
        x = rng.randint(0, w - 30)
        d.line([(x, y), (x + 25, y)], fill=(200, 220, 240), width=1)
    d.ellipse([-30, h // 2 - 25, 60, h // 2 + 10], fill=_jitter(rng, (50, 110, 50)))


def _desert(d, rng, w, h):
    _sky(d, rng, w, h, h // 2)
    d.rectangle([0, h // 2, w, h], fill=_jitter(rng, (220, 180, 110)))
    for _ in range(3):
        x = rng.randint(0, w)
        d.arc([x - 60, h // 2 - 10, x + 60, h // 2 + 40], 180, 360, fill=(190, 140, 80), width=3)
    x = rng.randint(20, w - 20)
    d.rectangle([x, h // 2, x + 5, h // 2 + 30], fill=(40, 120, 50))


def _pool(d, rng, w, h):
    d.rectangle([0, 0, w, h], fill=_jitter(rng, (230, 230, 225)))
    d.rounded_rectangle([15, 15, w - 15, h - 15], radius=10, fill=_jitter(rng, (60, 190, 230)))
    for lane in range(1, 4):
        y = 15 + lane * (h - 30) // 4
        d.line([(15, y), (w - 15, y)], fill=(250, 80, 80), width=2)


def _parking(d, rng, w, h):
    d.rectangle([0, 0, w, h], fill=_jitter(rng, (80, 80, 85)))
    for x in range(10, w, 30):
        d.line([(x, 10), (x, h // 2)], fill=(250, 250, 250), width=2)
        if rng.random() < 0.7:
            car = rng.choice([(200, 30, 30), (30, 30, 200), (220, 220, 220), (20, 20, 20)])
            d.rounded_rectangle([x + 4, 20, x + 26, h // 2 - 5], radius=4, fill=_jitter(rng, car))


# scene -> (drawing function, caption templates); {city} is filled in.
SCENES: dict[str, tuple[Callable, list[str]]] = {
    "beach": (_beach, ["Lazy afternoon at the beach in {city} #sun", "Waves and sand, {city}"]),
    "forest": (_forest, ["Hiking through the forest outside {city}", "Green everywhere #forest"]),
    "street": (_street, ["Rush hour on a downtown street in {city}", "City lights, {city} street"]),
    "church": (_church, ["The old church on the square, {city}", "Sunday bells at the chapel"]),
    "bakery": (_bakery, ["Fresh bread at my favourite bakery in {city}", "Croissants! #bakery"]),
    "mountain": (_mountain, ["Snowy peaks on the drive from {city}", "Mountain views #hiking"]),
    "lake": (_lake, ["Calm morning by the lake near {city}", "Canoe on the lake"]),
    "desert": (_desert, ["Dunes for miles, road trip from {city}", "Desert sunset #roadtrip"]),
    "pool": (_pool, ["Pool day at the hotel in {city}", "Laps in the swimming pool"]),
    "parking": (_parking, ["Cannot find my car in this parking lot, {city}", "Parking lot again"]),
}


def demo_images_write(folder: Path, *, count: int = 500, seed: int = 0) -> int:
    """Draw `count` scene images with sidecar captions under `folder` (deterministic)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible drawings, not secrets
    names = sorted(SCENES)
    for n in range(count):
        scene = names[n % len(names)]
        city = CITIES[(n // len(names)) % len(CITIES)]
        draw_fn, captions = SCENES[scene]
        w, h = rng.choice([(160, 120), (120, 160), (160, 160)])
        image = Image.new("RGB", (w, h))
        draw_fn(ImageDraw.Draw(image), rng, w, h)
        (folder / city).mkdir(parents=True, exist_ok=True)
        image.save(folder / city / f"{n:04d}.jpg", quality=85)
        caption = rng.choice(captions).format(city=city.title())
        if rng.random() < 0.1:  # some noise, as in real social media data
            caption = rng.choice(["lol", "", "Best day ever!!", "#nofilter"])
        (folder / city / f"{n:04d}.txt").write_text(caption + "\n", encoding="utf-8")
    return count


@dataclass
class DemoResult:
    dataset: ImportResult
    taxonomy: Any  # annotate.taxonomies.importers.TaxonomyImportResult
    checkpoint: str | None
    checkpoint_note: str
    itr: Any = None  # annotate.itr.demo.ItrDemoResult


def demo_users_create() -> None:
    """The demo users with their fixed passwords (reset on every run)."""
    ensure_groups()
    User = get_user_model()
    for username, password, role in DEMO_USERS:
        user, _ = User.objects.get_or_create(username=username)
        user.set_password(password)
        if role == Role.ADMIN:
            user.is_staff = user.is_superuser = True
        user.save()
        user.groups.add(Group.objects.get(name=role))


def demo_checkpoint_write() -> tuple[str | None, str]:
    """A tiny random-weight open_clip checkpoint for offline classification, when possible."""
    try:
        import open_clip  # noqa: F401  (the gpu extra)

        from classifier.engine import write_random_checkpoint
    except ImportError as exc:
        return None, f"no checkpoint: the gpu extra is not installed ({exc})"
    path = Path(settings.MEDIA_ROOT) / "models" / "sieve-tiny.pt"
    if not path.exists():
        write_random_checkpoint(path)
    return str(path), "random weights: predictions are meaningless, the pipeline is real"


def demo_seed(*, images: int = 500, progress=None) -> DemoResult:
    """Users, the `demo` dataset, the `places365` taxonomy, memberships and the checkpoint."""
    demo_users_create()
    folder = Path(settings.SIEVE_IMAGE_ROOTS[0]) / DEMO_DATASET
    folder.mkdir(parents=True, exist_ok=True)
    demo_images_write(folder, count=images)
    dataset_result = dataset_import(name=DEMO_DATASET, folder=folder, progress=progress)
    # The demo spans the layers above datasets: they are imported only when it runs.
    from annotate.taxonomies.importers import places365_import

    taxonomy_result = places365_import(name=DEMO_TAXONOMY)
    dataset = Dataset.objects.get(pk=dataset_result.dataset_id)
    User = get_user_model()
    for username, _password, role in DEMO_USERS:
        membership_set(dataset=dataset, user=User.objects.get(username=username), role=role)
    checkpoint, note = demo_checkpoint_write()
    from annotate.itr.demo import itr_demo_seed

    itr_result = itr_demo_seed(members=[(u, r) for u, _p, r in DEMO_USERS])
    return DemoResult(dataset_result, taxonomy_result, checkpoint, note, itr_result)
