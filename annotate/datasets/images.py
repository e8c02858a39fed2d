"""Reading item images for the web: the safe path, the content type and cached thumbnails."""

import os
import tempfile
import warnings
from pathlib import Path

from django.conf import settings
from PIL import Image, ImageOps

from annotate.datasets.models import Item
from annotate.datasets.paths import UnsafePath, safe_path

THUMBNAIL_SIZES = (128, 256, 512)
DEFAULT_THUMBNAIL_SIZE = 256
# Formats browsers display; anything else is re-encoded as PNG before it is served.
# Everything reading an image may raise for a bad, changed or hostile file: the views answer 404.
IMAGE_ERRORS = (UnsafePath, OSError, ValueError, SyntaxError, Image.DecompressionBombError)
WEB_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}


def item_image_path(item: Item) -> Path:
    """The item's image file; raises UnsafePath when it escapes the dataset or image roots."""
    return safe_path(item.image_path, base=item.dataset.image_root, kind="file")


def _open_checked(path: Path) -> Image.Image:
    im = Image.open(path)
    if im.width * im.height > settings.SIEVE_MAX_IMAGE_PIXELS:
        im.close()
        raise OSError("image exceeds SIEVE_MAX_IMAGE_PIXELS")
    return im


def image_reencoded_png(path: Path) -> bytes:
    """A PNG copy of an image in a format browsers may not show (TIFF, BMP...)."""
    import io

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with _open_checked(path) as im:
            out = io.BytesIO()
            ImageOps.exif_transpose(im).save(out, format="PNG")
    return out.getvalue()


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return im.convert("RGB")


def thumbnail_file(item: Item, size: int) -> Path:
    """The cached JPEG thumbnail of `item` (EXIF-rotated, RGB), made when missing or stale.

    Raises UnsafePath for a path outside the roots and OSError when the image cannot be
    decoded. Written to a temporary file and renamed, so concurrent requests never see half a
    file."""
    if size not in THUMBNAIL_SIZES:
        raise ValueError(f"size must be one of {THUMBNAIL_SIZES}")
    source = item_image_path(item)
    target = Path(settings.MEDIA_ROOT) / "thumbs" / str(item.dataset_id) / str(size)
    target = target / f"{item.pk}.jpg"
    try:
        if target.stat().st_mtime >= source.stat().st_mtime:
            return target
    except FileNotFoundError:
        pass
    target.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with _open_checked(source) as im:
            im.draft("RGB", (size, size))  # JPEG: decode at a reduced scale, much faster
            thumb = _to_rgb(ImageOps.exif_transpose(im))
            thumb.thumbnail((size, size))
            fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as fh:
                    thumb.save(fh, format="JPEG", quality=85)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
    return target
