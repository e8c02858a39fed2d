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


# Modes Pillow resizes with a proper filter; others (palette, 1-bit, 16-bit) are converted first.
RESIZABLE_MODES = {"L", "LA", "RGB", "RGBA", "CMYK", "YCbCr", "I", "F"}


def thumbnail_image(source: Path, size: int) -> Image.Image:
    """An RGB image of at most size x size, EXIF-rotated, decoding as little as possible: JPEG
    decodes at a reduced scale (draft: 1/2 to 1/8 in the DCT), and the shrink starts with
    reduce() (box averaging by an integer factor) before the final resample. Rotation and RGB
    conversion happen on the small image, so a large image costs its decode once, not three
    full-size copies."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with _open_checked(source) as im:
            orientation = _orientation(im)
            if getattr(im, "n_frames", 1) > 1:
                im.seek(0)
            small = im if im.mode in RESIZABLE_MODES else _to_rgb(im)
            # thumbnail(): draft() for JPEG, then reduce() and resize() in place.
            small.thumbnail((size, size), reducing_gap=2.0)
            thumb = _to_rgb(small)
    transpose = TRANSPOSES.get(orientation)
    return thumb.transpose(transpose) if transpose is not None else thumb


def _orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(ORIENTATION, 1))
    except Exception:  # a broken EXIF block must not lose the thumbnail
        return 1


ORIENTATION = 0x0112  # EXIF tag
TRANSPOSES = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


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
    thumb = thumbnail_image(source, size)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            thumb.save(fh, format="JPEG", quality=85)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
