"""import_taxonomy: Places, plain list and CSV formats, prompts, and bad files."""

import importlib
from pathlib import Path

import pytest
from django.core.management.base import CommandError

from annotate.taxonomies.importers import (
    PLACES365,
    PLACES365_INDOOR_OUTDOOR,
    TaxonomyImportError,
    places_name,
    taxonomy_import,
)
from annotate.taxonomies.models import Label, Taxonomy
from tests.datasets.conftest import run

pytestmark = pytest.mark.django_db


def labels(name: str) -> dict[str, Label]:
    return {label.key: label for label in Label.objects.filter(taxonomy__name=name)}


def test_places_names() -> None:
    assert places_name("/b/bakery/shop") == "bakery shop"
    assert places_name("/a/apartment_building/outdoor") == "apartment building outdoor"
    assert places_name("/z/zen_garden") == "zen garden"


def test_places_format_with_indoor_outdoor_prompts(tmp_path: Path) -> None:
    """Only a key ending in /outdoor gets the study's outdoor form; the flag is data."""
    places = tmp_path / "cats.txt"
    places.write_text(
        "/b/bakery/shop 0\n\n/c/cathedral/outdoor 1\n/c/church/outdoor 2\n/a/arch 3\n"
        "/b/beach 4\n/a/auditorium 5\n/a/apartment_building/outdoor 6\n"
    )
    flags = tmp_path / "io.txt"
    flags.write_text(
        "/b/bakery/shop 1\n/c/cathedral/outdoor 2\n/c/church/outdoor 2\n/a/arch 2\n"
        "/b/beach 2\n/a/auditorium 1\n"
    )
    _, summary = run(
        "import_taxonomy", "scenes", str(places), "--indoor-outdoor", str(flags), "--json"
    )
    assert summary["labels"] == 7
    assert summary["format"] == "places"
    assert summary["outdoor_prompts"] == 3
    got = labels("scenes")
    prompts = {key: label.effective_prompt for key, label in got.items()}
    assert prompts == {
        "/b/bakery/shop": "A photo of a bakery shop.",
        "/c/cathedral/outdoor": "A photo of the outdoor of a cathedral.",
        "/c/church/outdoor": "A photo of the outdoor of a church.",
        "/a/arch": "A photo of an arch.",  # flagged outdoor, but no qualifier in its key
        "/b/beach": "A photo of a beach.",
        "/a/auditorium": "A photo of an auditorium.",
        "/a/apartment_building/outdoor": "A photo of the outdoor of an apartment building.",
    }
    assert got["/c/church/outdoor"].name == "church outdoor"
    assert all(label.prompt == "" for label in got.values())  # built, not stored
    flags_by_key = {key: label.indoor_outdoor for key, label in got.items()}
    assert flags_by_key == {
        "/b/bakery/shop": "indoor",
        "/c/cathedral/outdoor": "outdoor",
        "/c/church/outdoor": "outdoor",
        "/a/arch": "outdoor",
        "/b/beach": "outdoor",
        "/a/auditorium": "indoor",
        "/a/apartment_building/outdoor": "",  # not in the flags file
    }
    assert [label.key for label in Label.objects.filter(taxonomy__name="scenes")] == [
        "/b/bakery/shop",
        "/c/cathedral/outdoor",
        "/c/church/outdoor",
        "/a/arch",
        "/b/beach",
        "/a/auditorium",
        "/a/apartment_building/outdoor",
    ]  # file order is kept


def test_bundled_places365() -> None:
    result = taxonomy_import(
        name="places365", path=PLACES365, indoor_outdoor=PLACES365_INDOOR_OUTDOOR
    )
    assert result.labels == 365
    assert result.outdoor_prompts == 25
    got = labels("places365")
    assert got["/b/beach"].effective_prompt == "A photo of a beach."
    assert got["/b/beach"].indoor_outdoor == "outdoor"
    assert got["/a/airport_terminal"].effective_prompt == "A photo of an airport terminal."
    assert got["/a/airport_terminal"].indoor_outdoor == "indoor"
    assert got["/c/church/outdoor"].effective_prompt == "A photo of the outdoor of a church."
    assert got["/b/bus_station/indoor"].effective_prompt == "A photo of a bus station indoor."
    outdoor = Label.objects.filter(taxonomy__name="places365", indoor_outdoor="outdoor")
    assert outdoor.count() == 205  # the flag stays as data, for filters


def test_article_rule_only_for_the_default_template(tmp_path: Path) -> None:
    plain = tmp_path / "labels.txt"
    plain.write_text("auditorium\nforest\n")
    run("import_taxonomy", "own", str(plain), "--template", "a photo of a {}, a place")
    got = labels("own")
    assert got["auditorium"].effective_prompt == "a photo of a auditorium, a place"  # as written
    run("import_taxonomy", "default", str(plain))
    got = labels("default")
    assert got["auditorium"].effective_prompt == "A photo of an auditorium."
    assert got["forest"].effective_prompt == "A photo of a forest."


def test_plain_list_with_template(tmp_path: Path) -> None:
    plain = tmp_path / "labels.txt"
    plain.write_text("beach\n  \nforest\ncity   street\n")
    run("import_taxonomy", "plain", str(plain), "--template", "a photo of {}, a scene")
    assert Taxonomy.objects.get(name="plain").prompt_template == "a photo of {}, a scene"
    assert [label.name for label in Label.objects.filter(taxonomy__name="plain")] == [
        "beach",
        "forest",
        "city street",
    ]
    assert labels("plain")["forest"].effective_prompt == "a photo of forest, a scene"


def test_csv_name_prompt(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text('name,prompt\nbeach,"A sunny beach, with sand."\nforest,\n')
    run("import_taxonomy", "csvtax", str(path))
    got = labels("csvtax")
    assert got["beach"].effective_prompt == "A sunny beach, with sand."
    assert got["forest"].effective_prompt == "A photo of a forest."


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "no labels"),
        ("\n \n\n", "no labels"),
        ("beach\nforest\nbeach\n", "duplicate label"),
        ("/b/beach 1\n/f/forest 2\n/b/beach 3\n", "duplicate label"),
        ("/b/beach 1\nforest\n", "not in Places format"),
    ],
)
def test_bad_taxonomy_files_write_nothing(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(CommandError, match=message):
        run("import_taxonomy", "bad", str(path))
    assert not Taxonomy.objects.exists()
    assert not Label.objects.exists()


def test_bad_template_and_flags(tmp_path: Path) -> None:
    path = tmp_path / "labels.txt"
    path.write_text("beach\n")
    with pytest.raises(CommandError, match="exactly once"):
        run("import_taxonomy", "t", str(path), "--template", "no placeholder")
    for template in ("{0}", "A {x}.", "A {:>10}.", "{}{}", "A {!r}.", "A {"):
        with pytest.raises(CommandError, match="template"):
            run("import_taxonomy", "t", str(path), "--template", template)
    flags = tmp_path / "io.txt"
    flags.write_text("beach 3\n")
    with pytest.raises(CommandError, match="indoor/outdoor line 1"):
        run("import_taxonomy", "t", str(path), "--indoor-outdoor", str(flags))
    with pytest.raises(CommandError, match="cannot read"):
        run("import_taxonomy", "t", str(tmp_path / "missing.txt"))
    assert not Taxonomy.objects.exists()


def test_non_utf8_taxonomy_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"caf\xe9\n")
    with pytest.raises(TaxonomyImportError, match="not UTF-8"):
        taxonomy_import(name="t", path=path)


def test_reimport_updates_labels(tmp_path: Path) -> None:
    path = tmp_path / "labels.txt"
    path.write_text("beach\nforest\n")
    run("import_taxonomy", "t", str(path))
    beach_id = labels("t")["beach"].pk
    path.write_text("forest\nbeach\ndesert\n")
    _, summary = run("import_taxonomy", "t", str(path), "--json")
    assert (summary["created"], summary["updated"], summary["deleted"]) == (1, 2, 0)
    assert labels("t")["beach"].pk == beach_id
    assert [label.key for label in Label.objects.filter(taxonomy__name="t")] == [
        "forest",
        "beach",
        "desert",
    ]
    path.write_text("forest\n")
    _, summary = run("import_taxonomy", "t", str(path), "--json")
    assert summary["deleted"] == 2
    assert set(labels("t")) == {"forest"}


def test_migration_clears_stored_outdoor_prompts_and_keeps_the_flag() -> None:
    """Taxonomies imported before: the outdoor form was stored as the label's prompt."""
    from django.apps import apps

    migration = importlib.import_module("annotate.taxonomies.migrations.0002_label_indoor_outdoor")
    taxonomy = Taxonomy.objects.create(name="old")
    stored = {
        "/b/beach": "A photo of the outdoor of a beach.",
        "/c/church/outdoor": "A photo of the outdoor of a church.",
        "/k/kitchen": "",
        "own": "A photo of the outdoor of my garden.",  # a CSV label's own prompt stays
    }
    for position, (key, prompt) in enumerate(stored.items()):
        Label.objects.create(
            taxonomy=taxonomy, key=key, name=places_name(key), prompt=prompt, position=position
        )
    migration.outdoor_prompts_to_flags(apps, None)
    got = labels("old")
    assert {k: (v.prompt, v.indoor_outdoor) for k, v in got.items()} == {
        "/b/beach": ("", "outdoor"),
        "/c/church/outdoor": ("", "outdoor"),
        "/k/kitchen": ("", ""),
        "own": ("A photo of the outdoor of my garden.", ""),
    }
    assert got["/b/beach"].effective_prompt == "A photo of a beach."
    assert got["/c/church/outdoor"].effective_prompt == "A photo of the outdoor of a church."
