"""Writing a curated selection to disk: CSV, JSON lines or Hugging Face's imagefolder layout,
with a manifest that says how to reproduce it (docs/architecture.md#curated-export).

One writer, two callers: the `export_curated` command (a local path) and the queued export
task (curated_jobs.py, under MEDIA_ROOT/exports/).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from annotate.validation.curation import Selection

FORMATS = ("csv", "jsonl", "imagefolder")
# The columns of every row, in order (CSV header; JSON keys).
ROW_FIELDS = [
    "item", "external_id", "image_path", "caption", "label", "label_name", "probability",
    "verdict", "predicted_label", "label_precision",
]  # fmt: skip


def manifest_path(fmt: str, out: Path) -> Path:
    """Where the manifest goes: `<out stem>.manifest.json` beside a CSV or JSONL file, and
    `manifest.json` inside an imagefolder directory."""
    if fmt == "imagefolder":
        return out / "manifest.json"
    return out.with_name(out.stem + ".manifest.json")


def export_write(
    *,
    selection: Selection,
    fmt: str,
    out: Path,
    exclude_duplicates: bool = False,
    exclude_suspects: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Stream the selection's rows to `out` in `fmt` and write the manifest; return the
    manifest. `progress(done, total)` is called as rows are written."""
    raise NotImplementedError
