"""Which architectures and pretrained tags a run may name, known without importing torch.

The web tier refuses an unknown architecture or tag when a run is created, but it must not
import open_clip (which imports torch). So the lists ship as data: `model_configs/
open_clip_catalog.json` holds open_clip's architectures and their pretrained tags, written from
the installed open_clip by `python -m classifier.catalog`; the configs bundled next to it
(`sieve-tiny.json`) are added. A test checks that the file matches the installed open_clip.
(open_clip ignores the catalog file when it scans the folder: it has no model config keys.)

No torch, no Django.
"""

import json
import sys
from functools import cache
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent / "model_configs"
CATALOG = CONFIG_DIR / "open_clip_catalog.json"
CONFIG_KEYS = ("embed_dim", "vision_cfg", "text_cfg")  # what makes a file a model config


def bundled_architectures() -> list[str]:
    """The model configs shipped with Sieve (registered with open_clip by the engine)."""
    names = []
    for path in sorted(CONFIG_DIR.glob("*.json")):
        config = json.loads(path.read_text())
        if all(key in config for key in CONFIG_KEYS):
            names.append(path.stem)
    return names


@cache
def _catalog() -> dict[str, list[str]]:
    models = json.loads(CATALOG.read_text())["models"]
    for name in bundled_architectures():
        models.setdefault(name, [])  # no pretrained tags: random init or a checkpoint
    return models


def known_architectures() -> list[str]:
    return list(_catalog())


def pretrained_tags(arch: str) -> list[str]:
    """The pretrained tags open_clip knows for `arch` (empty for an unknown one)."""
    return list(_catalog().get(arch, []))


def catalog_from_open_clip() -> dict:
    """The catalog as the installed open_clip sees it (imports torch)."""
    import open_clip

    models = {
        name: open_clip.list_pretrained_tags_by_model(name)
        for name in open_clip.list_models()
        if name not in bundled_architectures()
    }
    return {"open_clip_version": open_clip.__version__, "models": models}


def catalog_write(path: Path = CATALOG) -> Path:
    path.write_text(json.dumps(catalog_from_open_clip(), indent=1, sort_keys=True) + "\n")
    _catalog.cache_clear()
    return path


if __name__ == "__main__":
    written = catalog_write()
    sys.stdout.write(f"wrote {written}\n")
