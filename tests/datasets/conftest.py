"""Image factories and command helpers shared by the dataset tests."""

import io
import json
import random
import struct
import zlib
from pathlib import Path

import pytest
from django.core.management import call_command
from PIL import Image


def write_jpeg(path: Path, size=(32, 24), colour=(200, 30, 30), **save) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, format="JPEG", **save)
    return path


def write_png(path: Path, size=(16, 16), mode="RGBA", colour=(0, 200, 0, 128)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path, format="PNG")
    return path


def noisy_jpeg_bytes(size=(200, 200)) -> bytes:
    rng = random.Random(1)
    image = Image.frombytes(
        "RGB", size, bytes(rng.randrange(256) for _ in range(3 * size[0] * size[1]))
    )
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png_bytes(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny file whose header claims 10 gigapixels: a decompression bomb by its size."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _chunk(b"IEND", b"")
    )


def run(*args, **options) -> tuple[str, dict | None]:
    """Run a management command; returns (stdout, parsed JSON of its last line or None)."""
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    text = out.getvalue()
    last = text.strip().splitlines()[-1] if text.strip() else ""
    return text, json.loads(last) if last.startswith("{") else None


@pytest.fixture
def folder(image_root: Path) -> Path:
    """A folder of three good images inside the image root (one in a subfolder)."""
    root = image_root / "photos"
    write_jpeg(root / "a.jpg")
    write_jpeg(root / "b.jpg", size=(40, 30))
    write_png(root / "city" / "c.png")
    return root


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    """Logins hash passwords; the production hasher costs ~0.3 s a login on a busy CI core."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
