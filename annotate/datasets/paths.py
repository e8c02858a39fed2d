r"""Path safety: the one check used by imports and by image serving.

Images may only be read from inside `settings.SIEVE_IMAGE_ROOTS`, and an item's image only from
inside its dataset's root. Paths are resolved (symlinks followed, `..` collapsed) *before* the
containment check, so `..`, absolute paths, URL-encoded segments and symlinks pointing out of a
root are all refused the same way.

File names that are not UTF-8 (`latin1-\xff\xe9-name.jpg` as bytes on disk) cannot be stored
as text: `name_text` writes their bad bytes as `\xNN` escapes, always the same way, and
`safe_path` finds the file again from that text.
"""

import os
import re
from pathlib import Path

from django.conf import settings

ESCAPED_BYTE = re.compile(rb"\\x([0-9a-f]{2})")


class UnsafePath(ValueError):
    """A path that is missing or lies outside the folders Sieve may read."""


class PathMissing(UnsafePath):
    """The path names no file (or a broken symbolic link)."""


def name_text(name: str) -> str:
    r"""A file name as the OS gave it (undecodable bytes as surrogates) as storable text:
    UTF-8 names unchanged, other bytes as `\xNN` escapes (deterministic: a re-import maps the
    file to the same item)."""
    raw = os.fsencode(name)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace")


def name_on_disk(text: str) -> str | None:
    """The OS file name that `name_text` turned into `text`, or None when `text` is not such
    an escaped name."""
    raw = text.encode("utf-8", "surrogateescape")
    if not ESCAPED_BYTE.search(raw):
        return None
    name = os.fsdecode(ESCAPED_BYTE.sub(lambda m: bytes([int(m[1], 16)]), raw))
    return name if name != text and name_text(name) == text else None


def image_roots() -> list[Path]:
    return [Path(p).resolve() for p in settings.SIEVE_IMAGE_ROOTS]


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or path.is_relative_to(folder)


def safe_path(path: str | Path, *, base: str | Path | None = None, kind: str = "file") -> Path:
    """Resolve `path` (relative to `base` when given) and return it if it is safe to read.

    Safe means: it exists, is a `kind` ("file" or "dir"), and its real location lies inside one
    of SIEVE_IMAGE_ROOTS and (when `base` is given) inside the real location of `base`.
    Raises UnsafePath with a message fit for the user otherwise.
    """
    raw = str(path)
    if "\x00" in raw:
        raise UnsafePath("path contains a NUL byte")
    if base is not None:
        base_real = Path(base).resolve()
        if Path(raw).is_absolute():
            raise UnsafePath(f"{raw!r} must be relative to the dataset folder")
        candidate = base_real / raw
    else:
        base_real = None
        candidate = Path(raw).expanduser()
    if not os.path.lexists(candidate):
        on_disk = name_on_disk(str(candidate))
        candidate = Path(on_disk) if on_disk is not None else candidate
    try:
        real = candidate.resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError):
        raise PathMissing(f"{raw!r} does not exist") from None
    except (OSError, RuntimeError) as exc:  # symlink loops, permission errors
        raise UnsafePath(f"{raw!r} cannot be resolved: {exc}") from None
    roots = image_roots()
    if not any(_inside(real, root) for root in roots):
        allowed = ", ".join(str(r) for r in roots) or "(none configured)"
        raise UnsafePath(f"{raw!r} is outside the allowed image roots ({allowed})")
    if base_real is not None and not _inside(real, base_real):
        raise UnsafePath(f"{raw!r} is outside the dataset folder")
    if kind == "dir" and not real.is_dir():
        raise UnsafePath(f"{raw!r} is not a folder")
    if kind == "file" and not real.is_file():
        raise UnsafePath(f"{raw!r} is not a file")
    return real
