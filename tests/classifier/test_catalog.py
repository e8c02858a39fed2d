"""The architecture/tag catalog the web tier checks runs against matches the installed open_clip
(regenerate it with `python -m classifier.catalog` after upgrading open_clip)."""

import json

import pytest

from classifier import catalog

pytestmark = pytest.mark.torch


def test_catalog_matches_the_installed_open_clip() -> None:
    shipped = json.loads(catalog.CATALOG.read_text())
    assert shipped == catalog.catalog_from_open_clip(), "run: python -m classifier.catalog"


def test_catalog_knows_the_bundled_config_and_tags() -> None:
    from classifier import engine  # registers sieve-tiny with open_clip

    assert set(catalog.known_architectures()) == set(engine.known_architectures())
    assert catalog.pretrained_tags("sieve-tiny") == []
    assert "openai" in catalog.pretrained_tags("ViT-B-32")
    assert catalog.pretrained_tags("ViT-Z-99") == []
