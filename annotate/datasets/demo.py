"""The demo: users, a generated captioned image dataset with its ground truth, Places365, the
offline demo model, a classification run with a validation study under way
(annotate/validation/demo.py), and the ITR dataset with a review study under way
(annotate/itr/demo.py). See docs/architecture.md#demo.

Images are drawn with Pillow (deterministic from a seed): each one is a small scene (beach,
forest, city street, church, bakery, mountain, lake, desert, swimming pool, parking lot) in
varied colours and shapes, stored InstaCities-style as `<city>/<n>.jpg` with a sidecar
`<city>/<n>.txt` caption, so the demo exercises the real import path. Each item's scene (its
Places365 key) is its ground truth, in `metadata["scene"]`. Some scenes share looks, and a
few drawings take another scene's look outright, so the demo model is often right and
sometimes wrong.
"""

import contextlib
import hashlib
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
from annotate.datasets.models import Dataset, Item, Role

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
DEFAULT_IMAGES = 500
# The demo model (docs/architecture.md#demo): its file name is what the console offers.
DEMO_MODEL_FILE = "sieve-demo.pt"
TRAINING_SEED = 1  # the dataset's drawings come from seed 0: the model never sees them
TRAINING_DRAWINGS = 1000
FULL_STEPS = 400
MIN_STEPS = 120

# bars(label, total, unit=...) -> a context manager giving a progress(done, total) callback.
Bars = Callable[..., contextlib.AbstractContextManager]

Palette = tuple[int, int, int]
Draw = ImageDraw.ImageDraw


def _jitter(rng: random.Random, colour: Palette, amount: int = 40) -> Palette:
    r, g, b = (max(0, min(255, c + rng.randint(-amount, amount))) for c in colour)
    return (r, g, b)


def _sky(d: Draw, rng: random.Random, w: int, horizon: int) -> None:
    top = _jitter(
        rng, rng.choice([(110, 170, 235), (110, 170, 235), (250, 160, 90), (40, 50, 110)])
    )
    for y in range(max(horizon, 0)):
        f = y / max(horizon, 1)
        d.line([(0, y), (w, y)], fill=tuple(int(c * (1 - 0.3 * f)) for c in top))


def _hills(d: Draw, rng: random.Random, w: int, horizon: int, colour: Palette) -> None:
    """A green (or other) line of hills and trees standing on the horizon."""
    x = -20
    while x < w:
        r = rng.randint(10, 30)
        d.ellipse([x, horizon - r, x + 2 * r, horizon + r // 2], fill=_jitter(rng, colour, 25))
        x += rng.randint(r, 2 * r)


def _peaks(d: Draw, rng: random.Random, w: int, base: int, colour: Palette, snow: bool) -> None:
    for _ in range(rng.randint(2, 4)):
        x = rng.randint(0, w)
        peak = rng.randint(base // 4, base * 2 // 3)
        spread = rng.randint(50, 90)
        d.polygon([(x - spread, base), (x, peak), (x + spread, base)], fill=_jitter(rng, colour))
        if snow:
            d.polygon([(x - 12, peak + 15), (x, peak), (x + 12, peak + 15)], fill=(250, 250, 250))


def _buildings(d: Draw, rng: random.Random, w: int, low: int, high: int, base: int) -> None:
    x = rng.randint(-15, 0)
    while x < w:
        bw = rng.randint(18, 40)
        top = rng.randint(low, high)
        d.rectangle([x, top, x + bw, base], fill=_jitter(rng, (120, 120, 130), 50))
        for wy in range(top + 5, base - 5, 10):
            d.rectangle([x + 4, wy, x + 8, wy + 4], fill=(250, 230, 120))
        x += bw + 2


def _car(d: Draw, rng: random.Random, box: list[int]) -> None:
    colour = rng.choice([(200, 30, 30), (30, 30, 200), (220, 220, 220), (20, 20, 20)])
    d.rounded_rectangle(box, radius=4, fill=_jitter(rng, colour))


def _water(d: Draw, rng: random.Random, w: int, top: int, bottom: int, colour: Palette) -> None:
    d.rectangle([0, top, w, bottom], fill=_jitter(rng, colour, 30))
    for _ in range(rng.randint(2, 7)):
        y = rng.randint(top + 3, max(top + 4, bottom - 3))
        x = rng.randint(0, w - 30)
        d.line([(x, y), (x + rng.randint(12, 30), y)], fill=(200, 220, 240), width=1)


SEA, LAKE, POOL = (30, 110, 190), (40, 90, 150), (60, 190, 230)
SAND, GRASS, ASPHALT = (235, 210, 150), (90, 140, 70), (80, 80, 85)


def _beach(d: Draw, rng: random.Random, w: int, h: int) -> None:
    horizon = rng.randint(h * 2 // 5, h // 2)
    _sky(d, rng, w, horizon)
    if rng.random() < 0.5:  # a cove: hills across the water, as at a lake
        _hills(d, rng, w, horizon, (60, 110, 50))
    shore = horizon + rng.randint(h // 8, h // 3)
    _water(d, rng, w, horizon, shore, rng.choice([SEA, LAKE]))
    d.rectangle([0, shore, w, h], fill=_jitter(rng, SAND))
    d.line([(0, shore), (w, shore)], fill=(245, 245, 245), width=2)
    if rng.random() < 0.6:
        x = rng.randint(10, w - 30)
        d.ellipse([x, 8, x + 22, 30], fill=(255, 230, 90))
    if rng.random() < 0.5:  # a parasol
        x, y = rng.randint(20, w - 20), rng.randint(shore + 5, h - 10)
        d.line([(x, y), (x, y - 22)], fill=(90, 60, 40), width=2)
        d.pieslice([x - 16, y - 34, x + 16, y - 10], 180, 360, fill=_jitter(rng, (230, 60, 60), 60))


def _lake(d: Draw, rng: random.Random, w: int, h: int) -> None:
    horizon = rng.randint(h * 2 // 5, h // 2)
    _sky(d, rng, w, horizon)
    if rng.random() < 0.5:
        _peaks(d, rng, w, horizon, (110, 110, 120), snow=rng.random() < 0.5)
    if rng.random() < 0.8:
        _hills(d, rng, w, horizon, (50, 100, 45))
    shore = h - rng.randint(0, h // 3)
    _water(d, rng, w, horizon, shore, rng.choice([LAKE, LAKE, SEA, POOL]))
    if shore < h:  # the near shore: grass, or sand as at a beach
        d.rectangle([0, shore, w, h], fill=_jitter(rng, rng.choice([GRASS, SAND])))


def _pool(d: Draw, rng: random.Random, w: int, h: int) -> None:
    if rng.random() < 0.5:  # from above: the deck all around
        d.rectangle([0, 0, w, h], fill=_jitter(rng, (230, 230, 225)))
        d.rounded_rectangle([15, 15, w - 15, h - 15], radius=10, fill=_jitter(rng, POOL))
        for lane in range(1, 4) if rng.random() < 0.7 else ():
            y = 15 + lane * (h - 30) // 4
            d.line([(15, y), (w - 15, y)], fill=(250, 80, 80), width=2)
        return
    # From the side: sky and a hedge or the sea behind, the water, a strip of deck in front.
    horizon = rng.randint(h // 3, h // 2)
    _sky(d, rng, w, horizon)
    if rng.random() < 0.6:
        _hills(d, rng, w, horizon, (50, 110, 50))
    deck = h - rng.randint(h // 10, h // 4)
    _water(d, rng, w, horizon, deck, rng.choice([POOL, POOL, SEA]))
    d.rectangle([0, deck, w, h], fill=_jitter(rng, rng.choice([(230, 230, 225), SAND])))


def _street(d: Draw, rng: random.Random, w: int, h: int) -> None:
    road = rng.randint(h * 3 // 5, h * 3 // 4)
    _sky(d, rng, w, road)
    _buildings(d, rng, w, 10, h // 2, road)
    d.rectangle([0, road, w, h], fill=_jitter(rng, (60, 60, 60), 20))
    middle = (road + h) // 2
    for x in range(0, w, 20):
        d.line([(x, middle), (x + 10, middle)], fill=(240, 240, 240), width=2)
    for _ in range(rng.randint(0, 5)):  # traffic
        x = rng.randint(0, w - 30)
        y = rng.choice([road + 2, middle + 2])
        _car(d, rng, [x, y, x + 28, min(h - 1, y + 14)])


def _parking(d: Draw, rng: random.Random, w: int, h: int) -> None:
    top = 0
    if rng.random() < 0.5:  # seen from the ground: buildings behind the lot, as in a street
        top = rng.randint(h // 3, h // 2)
        _sky(d, rng, w, top)
        _buildings(d, rng, w, 5, top - 10, top)
    d.rectangle([0, top, w, h], fill=_jitter(rng, ASPHALT))
    rows = [top + 8] if h - top < 70 else [top + 8, (top + h) // 2 + 4]
    for y in rows:
        for x in range(10, w, 30):
            d.line([(x, y), (x, y + 30)], fill=(250, 250, 250), width=2)
            if rng.random() < 0.7:
                _car(d, rng, [x + 4, y + 3, x + 26, y + 28])


def _church(d: Draw, rng: random.Random, w: int, h: int) -> None:
    ground = h * 2 // 3 + rng.randint(-10, 10)
    _sky(d, rng, w, ground)
    in_town = rng.random() < 0.45  # between houses, on a street
    if in_town:
        _buildings(d, rng, w, h // 4, h // 2, ground)
        d.rectangle([0, ground, w, h], fill=_jitter(rng, (60, 60, 60), 20))
    else:
        d.rectangle([0, ground, w, h], fill=_jitter(rng, GRASS))
    cx = w // 2 + rng.randint(-20, 20)
    half = rng.randint(22, 35)
    d.rectangle([cx - half, h // 3, cx + half, ground + 5], fill=_jitter(rng, (200, 190, 170)))
    roof = _jitter(rng, (140, 50, 40))
    d.polygon([(cx - half - 7, h // 3), (cx, h // 8), (cx + half + 7, h // 3)], fill=roof)
    d.rectangle([cx - 3, h // 8 - 18, cx + 3, h // 8], fill=(60, 60, 60))
    d.rectangle([cx - 10, h // 8 - 12, cx + 10, h // 8 - 7], fill=(60, 60, 60))
    d.pieslice([cx - 10, ground - 25, cx + 10, ground - 5], 180, 360, fill=(70, 40, 30))


def _bakery(d: Draw, rng: random.Random, w: int, h: int) -> None:
    d.rectangle([0, 0, w, h], fill=_jitter(rng, (150, 100, 60)))
    if rng.random() < 0.25:  # the shop from the street: an awning over the window
        stripe = _jitter(rng, (200, 50, 50))
        for x in range(0, w, 16):
            d.rectangle([x, 0, x + 8, h // 5], fill=stripe)
    d.rectangle([0, h * 2 // 3, w, h], fill=_jitter(rng, (110, 70, 40)))
    for _ in range(rng.randint(8, 16)):
        x, y = rng.randint(0, w - 30), rng.randint(h // 3, h - 20)
        d.ellipse([x, y, x + rng.randint(18, 34), y + rng.randint(10, 18)],
                  fill=_jitter(rng, (210, 150, 70)))  # fmt: skip


def _forest(d: Draw, rng: random.Random, w: int, h: int) -> None:
    horizon = rng.randint(h // 5, h // 3)
    _sky(d, rng, w, horizon)
    if rng.random() < 0.45:  # on a mountainside
        _peaks(d, rng, w, horizon + 20, (110, 110, 120), snow=rng.random() < 0.5)
    d.rectangle([0, horizon, w, h], fill=_jitter(rng, (60, 100, 40)))
    leaves = rng.choice([(40, 120, 40), (40, 120, 40), (200, 130, 40)])  # summer or autumn
    for _ in range(rng.randint(6, 14)):
        x, y = rng.randint(-10, w), rng.randint(horizon, h - 10)
        r = rng.randint(10, 22)
        d.rectangle([x - 2, y, x + 2, y + r + 8], fill=(80, 50, 30))
        d.ellipse([x - r, y - r, x + r, y + r // 2], fill=_jitter(rng, leaves, 30))


def _mountain(d: Draw, rng: random.Random, w: int, h: int) -> None:
    _sky(d, rng, w, h)
    rock = rng.choice([(110, 110, 120), (160, 120, 80)])  # grey or red rock
    _peaks(d, rng, w, h, rock, snow=rng.random() < 0.7)
    if rng.random() < 0.45:  # wooded foothills
        ground = h - rng.randint(h // 5, h // 3)
        d.rectangle([0, ground, w, h], fill=_jitter(rng, (60, 100, 40)))
        for _ in range(rng.randint(3, 8)):
            x, y = rng.randint(0, w), rng.randint(ground, h)
            r = rng.randint(8, 14)
            d.ellipse([x - r, y - r, x + r, y + r // 2], fill=_jitter(rng, (40, 120, 40), 30))


def _desert(d: Draw, rng: random.Random, w: int, h: int) -> None:
    horizon = rng.randint(h * 2 // 5, h // 2)
    _sky(d, rng, w, horizon)
    if rng.random() < 0.45:  # mesas on the horizon
        _peaks(d, rng, w, horizon, (170, 110, 70), snow=False)
    d.rectangle([0, horizon, w, h], fill=_jitter(rng, (220, 180, 110)))
    for _ in range(3):
        x = rng.randint(0, w)
        y = rng.randint(horizon - 10, h - 30)
        d.arc([x - 60, y, x + 60, y + 50], 180, 360, fill=(190, 140, 80), width=3)
    if rng.random() < 0.6:
        x = rng.randint(20, w - 20)
        d.rectangle([x, horizon, x + 5, horizon + 30], fill=(40, 120, 50))


# Places365 key -> (drawing function, caption templates); {city} is filled in. Some scenes
# share looks (a cove at the beach, a sandy lake shore, a pool by the sea, a parking lot
# before houses, a church in a street), so a model confuses them now and then.
SCENES: dict[str, tuple[Callable, list[str]]] = {
    "/b/bakery/shop": (
        _bakery,
        ["Fresh bread at my favourite bakery in {city}", "Croissants! #bakery"],
    ),
    "/b/beach": (_beach, ["Lazy afternoon at the beach in {city} #sun", "Waves and sand, {city}"]),
    "/c/church/outdoor": (
        _church,
        ["The old church on the square, {city}", "Sunday bells at the chapel"],
    ),
    "/d/desert/sand": (
        _desert,
        ["Dunes for miles, road trip from {city}", "Desert sunset #roadtrip"],
    ),
    "/f/forest/broadleaf": (
        _forest,
        ["Hiking through the forest outside {city}", "Green everywhere #forest"],
    ),
    "/l/lake/natural": (_lake, ["Calm morning by the lake near {city}", "Canoe on the lake"]),
    "/m/mountain": (_mountain, ["Peaks on the drive from {city}", "Mountain views #hiking"]),
    "/p/parking_lot": (
        _parking,
        ["Cannot find my car in this parking lot, {city}", "Parking lot again"],
    ),
    "/s/street": (
        _street,
        ["Rush hour on a downtown street in {city}", "City lights, {city} street"],
    ),
    "/s/swimming_pool/outdoor": (
        _pool,
        ["Pool day at the hotel in {city}", "Laps in the swimming pool"],
    ),
}


# A drawing of a scene in the look of another now and then (a lake shore that looks like a
# beach): its caption still says where it was taken, its picture misleads.
LOOKALIKES: dict[str, list[str]] = {
    "/b/beach": ["/l/lake/natural", "/s/swimming_pool/outdoor"],
    "/l/lake/natural": ["/b/beach", "/s/swimming_pool/outdoor"],
    "/s/swimming_pool/outdoor": ["/l/lake/natural", "/b/beach"],
    "/s/street": ["/p/parking_lot", "/c/church/outdoor"],
    "/p/parking_lot": ["/s/street"],
    "/c/church/outdoor": ["/s/street"],
    "/f/forest/broadleaf": ["/m/mountain"],
    "/m/mountain": ["/d/desert/sand", "/f/forest/broadleaf"],
    "/d/desert/sand": ["/m/mountain", "/b/beach"],
}
LOOKALIKE_SHARE = 0.15


def demo_image_draw(rng: random.Random, scene: str) -> tuple[Image.Image, str]:
    """One drawing of `scene` (a SCENES key) and its caption's template."""
    draw_fn, captions = SCENES[scene]
    if scene in LOOKALIKES and rng.random() < LOOKALIKE_SHARE:
        draw_fn = SCENES[rng.choice(LOOKALIKES[scene])][0]
    w, h = rng.choice([(160, 120), (120, 160), (160, 160)])
    image = Image.new("RGB", (w, h))
    draw_fn(ImageDraw.Draw(image), rng, w, h)
    return image, rng.choice(captions)


def _scene_order(count: int) -> list[str]:
    names = sorted(SCENES)
    return [names[n % len(names)] for n in range(count)]


def demo_images_write(folder: Path, *, count: int = 500, seed: int = 0) -> dict[str, str]:
    """Draw `count` scene images with sidecar captions under `folder` (deterministic); returns
    each image's external id (`city/0042.jpg`) with its scene's Places365 key."""
    rng = random.Random(seed)  # noqa: S311 - reproducible drawings, not secrets
    scenes: dict[str, str] = {}
    for n, scene in enumerate(_scene_order(count)):
        city = CITIES[(n // len(SCENES)) % len(CITIES)]
        image, caption = demo_image_draw(rng, scene)
        (folder / city).mkdir(parents=True, exist_ok=True)
        image.save(folder / city / f"{n:04d}.jpg", quality=85)
        caption = caption.format(city=city.title())
        if rng.random() < 0.1:  # some noise, as in real social media data
            caption = rng.choice(["lol", "", "Best day ever!!", "#nofilter"])
        (folder / city / f"{n:04d}.txt").write_text(caption + "\n", encoding="utf-8")
        scenes[f"{city}/{n:04d}.jpg"] = scene
    return scenes


def demo_scenes_store(dataset: Dataset, scenes: dict[str, str]) -> int:
    """Each item's ground truth in `metadata["scene"]` (sidecar captions carry no metadata),
    merged into the metadata it has; one bulk update."""
    items = list(Item.objects.filter(dataset=dataset, external_id__in=scenes))
    for item in items:
        item.metadata = {**(item.metadata or {}), "scene": scenes[item.external_id]}
    Item.objects.bulk_update(items, ["metadata"], batch_size=1000)
    return len(items)


@dataclass
class DemoModel:
    path: str | None  # None: the gpu extra (torch, open_clip) is not installed
    note: str
    trained: bool = False  # False: an up-to-date checkpoint was kept
    seconds: float | None = None  # training time, when trained now
    steps: int = 0
    training_accuracy: float | None = None


@dataclass
class DemoResult:
    dataset: ImportResult
    taxonomy: Any  # annotate.taxonomies.importers.TaxonomyImportResult
    model: DemoModel
    itr: Any = None  # annotate.itr.demo.ItrDemoResult
    study: Any = None  # annotate.validation.demo.DemoStudy (None without a model)

    @property
    def checkpoint(self) -> str | None:
        return self.model.path


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


def demo_model_steps(images: int) -> int:
    """Training steps: the full recipe for the default demo, fewer for a small one (the
    screenshot scripts' `--images 50`), which is then quick and less accurate."""
    return max(MIN_STEPS, round(FULL_STEPS * min(1.0, images / DEFAULT_IMAGES)))


def demo_model_ensure(*, taxonomy_id: int, images: int, progress=None) -> DemoModel:
    """The offline demo model `MEDIA_ROOT/models/sieve-demo.pt`: `sieve-tiny` trained on
    drawings of the demo's scenes (drawn from another seed than the dataset's, so the run is
    scored on drawings the model never saw) against the taxonomy's prompts, built exactly as
    a run builds them. Kept when its stamp matches the recipe, so a second seed is fast.
    See docs/architecture.md#demo."""
    try:
        import open_clip  # noqa: F401  (the gpu extra)

        from classifier.demo_model import (
            Recipe,
            demo_model_save,
            demo_model_stamp,
            demo_model_train,
        )
    except ImportError as exc:
        return DemoModel(None, f"no demo model: the gpu extra is not installed ({exc})")
    from annotate.taxonomies.models import Label

    labels = list(Label.objects.filter(taxonomy_id=taxonomy_id).select_related("taxonomy"))
    labels.sort(key=lambda label: (label.position, label.key))
    index = {label.key: n for n, label in enumerate(labels)}
    missing = sorted(set(SCENES) - set(index))
    if missing:
        raise ValueError(f"the taxonomy has no label for the demo scenes {missing}")
    prompts = [label.effective_prompt for label in labels]
    rng = random.Random(TRAINING_SEED)  # noqa: S311 - reproducible drawings, not secrets
    drawings = [demo_image_draw(rng, scene)[0] for scene in _scene_order(TRAINING_DRAWINGS)]
    digest = hashlib.sha256()
    for image in drawings:
        digest.update(image.tobytes())
    recipe = Recipe(steps=demo_model_steps(images))
    stamp = recipe.stamp(prompts, drawings=digest.hexdigest())
    path = Path(settings.MEDIA_ROOT) / "models" / DEMO_MODEL_FILE
    note = (
        f"{recipe.arch} trained for {recipe.steps} steps on drawings of the demo's scenes: "
        "it shows the pipeline, it says nothing about CLIP"
    )
    if path.exists() and demo_model_stamp(path) == stamp:
        if progress is not None:
            progress(recipe.steps, recipe.steps)
        return DemoModel(str(path), note, steps=recipe.steps)
    targets = [index[scene] for scene in _scene_order(TRAINING_DRAWINGS)]
    model, training = demo_model_train(drawings, targets, prompts, recipe=recipe, progress=progress)
    demo_model_save(model, path, stamp=stamp)
    return DemoModel(
        str(path), note, trained=True, seconds=training.seconds, steps=training.steps,
        training_accuracy=training.accuracy,
    )  # fmt: skip


def _no_bar(label: str, total: int | None = None, *, unit: str = "it"):
    return contextlib.nullcontext(None)


def demo_seed(*, images: int = DEFAULT_IMAGES, bars: Bars | None = None) -> DemoResult:
    """Users, the `demo` dataset with its ground truth, the `places365` taxonomy,
    memberships, the demo model, the ITR study, and the demo's classification run with a
    validation study under way (annotate/validation/demo.py). `bars(label, total, unit=)`
    gives a progress callback as a context manager (the command's progress bars)."""
    bars = bars or _no_bar
    demo_users_create()
    folder = Path(settings.SIEVE_IMAGE_ROOTS[0]) / DEMO_DATASET
    folder.mkdir(parents=True, exist_ok=True)
    scenes = demo_images_write(folder, count=images)
    with bars("demo images", images, unit="img") as bar:
        dataset_result = dataset_import(name=DEMO_DATASET, folder=folder, progress=bar)
    dataset = Dataset.objects.get(pk=dataset_result.dataset_id)
    demo_scenes_store(dataset, scenes)
    # The demo spans the layers above datasets: they are imported only when it runs.
    from annotate.taxonomies.importers import places365_import

    taxonomy_result = places365_import(name=DEMO_TAXONOMY)
    User = get_user_model()
    for username, _password, role in DEMO_USERS:
        membership_set(dataset=dataset, user=User.objects.get(username=username), role=role)
    with bars("demo model", demo_model_steps(images), unit="step") as bar:
        model = demo_model_ensure(
            taxonomy_id=taxonomy_result.taxonomy_id, images=images, progress=bar
        )
    from annotate.itr.demo import itr_demo_seed

    itr_result = itr_demo_seed(members=[(u, r) for u, _p, r in DEMO_USERS])
    study = None
    if model.path:
        from annotate.validation.demo import demo_study_seed

        with bars("demo run", images, unit="img") as bar:
            study = demo_study_seed(
                dataset_id=dataset.pk, taxonomy_id=taxonomy_result.taxonomy_id,
                checkpoint=model.path, retrained=model.trained, progress=bar,
            )  # fmt: skip
    return DemoResult(dataset_result, taxonomy_result, model, itr_result, study)
