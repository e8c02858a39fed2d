"""The CLIP engine: pure torch/open_clip code, NO Django imports.

Surface (see docs/architecture.md "The computations"):
- `load_model(arch, weights)` / `get_model(...)` (cached once per process),
- `load_image(path)` (robust decode), `encode_image_batches(...)` (DataLoader with decode
  workers), `encode_texts(...)` (optionally several prompt templates averaged),
- `score(...)`: zero-shot, the image/weighted/conditional ensembles, top-k,
- `write_random_checkpoint(path)`: a tiny random model for tests and the offline demo.

Every knob (device, precision, batch size, image limits, hub access) is an argument: the
caller reads the settings (`classifier.tasks`), this module reads no environment. Only
`classifier.tasks` bridges this module and the ORM; it imports it lazily, so the web tier never
imports torch.
"""

from __future__ import annotations

import contextlib
import os
import socket
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

CONFIG_DIR = Path(__file__).resolve().parent / "model_configs"
TINY_MODEL = "sieve-tiny"
DEFAULT_MAX_PIXELS = 89_478_485
DEFAULT_MAX_ASPECT_RATIO = 20.0
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt", ".npz")
HUB_HOST = ("huggingface.co", 443)

open_clip.add_model_config(CONFIG_DIR)  # registers sieve-tiny next to the built-in configs


class EngineError(Exception):
    """A problem the user can fix (bad architecture, weights, checkpoint); `str()` says how."""


class WeightsUnavailable(EngineError):
    pass


class BadImage(Exception):
    """An image that cannot be classified; `reason` is a short category used for counting."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass
class LoadedModel:
    model: Any  # an open_clip CLIP model (encode_image, encode_text, transformer, ...)
    preprocess: Callable[[Image.Image], torch.Tensor]
    tokenizer: Callable[[Sequence[str]], torch.Tensor]
    device: torch.device
    arch: str
    weights: str
    logit_scale: float
    image_size: int
    cpu_precision: str = "auto"

    @property
    def autocast(self):
        """fp16/bf16 autocast on CUDA; on CPU bf16 where the CPU has native bf16 (AVX512-BF16,
        AMX: about 3x faster than fp32 for ViT-B-32 here), else fp32. cpu_precision="fp32"
        forces fp32 on the CPU."""
        if self.device.type == "cuda":
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return torch.autocast("cuda", dtype=dtype)
        if self.device.type == "cpu" and cpu_bf16(self.cpu_precision):
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()


def cpu_bf16(precision: str = "auto") -> bool:
    """Whether CPU inference runs in bf16 (precision: auto | bf16 | fp32)."""
    choice = precision.lower()
    if choice in ("fp32", "float32"):
        return False
    if choice == "bf16":
        return True
    return bool(
        torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )


# --- loading -------------------------------------------------------------------------------


def known_architectures() -> list[str]:
    return open_clip.list_models()


def pick_device(prefer: str | None = None) -> torch.device:
    """CUDA when present (or asked for), else CPU."""
    if prefer:
        return torch.device(prefer)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def looks_like_path(weights: str) -> bool:
    return (
        os.sep in weights
        or weights.startswith(".")
        or weights.lower().endswith(CHECKPOINT_SUFFIXES)
        or Path(weights).exists()
    )


def hub_reachable(*, offline: bool = False, timeout: float = 1.5) -> bool:
    """A quick TCP check instead of a minute of hub retries (offline: do not even try)."""
    if offline:
        return False
    try:
        with socket.create_connection(HUB_HOST, timeout=timeout):
            return True
    except OSError:
        return False


def _offline_hint(arch: str, weights: str) -> str:
    return (
        f"Weights {weights!r} for {arch} come from the model hub, which this machine cannot "
        f"reach (offline, or HF_HUB_OFFLINE=1) and which are not in the local cache. Download "
        f"the checkpoint on a connected machine and pass --weights /path/to/checkpoint.pt "
        f"(a state dict for {arch})."
    )


def check_model_spec(arch: str, weights: str) -> None:
    """Cheap checks before any work: known architecture, existing checkpoint, known tag."""
    if arch not in known_architectures():
        raise EngineError(
            f"Unknown architecture {arch!r}. Use an open_clip name such as ViT-B-32, ViT-L-14 "
            f"or {TINY_MODEL} (see open_clip.list_models())."
        )
    if not weights:
        return
    if looks_like_path(weights):
        if not Path(weights).is_file():
            raise EngineError(f"Checkpoint not found: {weights} (no such file).")
        return
    if open_clip.get_pretrained_cfg(arch, weights) in (None, {}):
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(arch)) or "none"
        raise EngineError(
            f"{weights!r} is neither an existing checkpoint file nor a pretrained tag of "
            f"{arch} (tags: {tags})."
        )


def load_model(
    arch: str,
    weights: str = "",
    *,
    device: str | None = None,
    cpu_precision: str = "auto",
    hub_offline: bool = False,
) -> LoadedModel:
    """Load `arch` with `weights` (pretrained tag, checkpoint path, or empty = random init)
    through the real open_clip loader, with `weights_only` unpickling. hub_offline: the model
    hub is not tried (only the local cache may answer)."""
    check_model_spec(arch, weights)
    pretrained = weights or None
    if weights and not looks_like_path(weights) and not hub_reachable(offline=hub_offline):
        # Only the local cache may answer: fail in milliseconds, not after hub retries.
        os.environ["HF_HUB_OFFLINE"] = "1"
        with contextlib.suppress(Exception):
            import huggingface_hub.constants as hf_constants

            hf_constants.HF_HUB_OFFLINE = True
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            arch, pretrained=pretrained, weights_only=True, load_weights=True
        )
    except EngineError:
        raise
    except Exception as exc:
        if pretrained and looks_like_path(weights):
            raise EngineError(
                f"{weights} is not a usable {arch} checkpoint (expected a state dict saved with "
                f"torch.save(model.state_dict(), path)): {type(exc).__name__}: {str(exc)[:300]}"
            ) from exc
        if pretrained:
            raise WeightsUnavailable(_offline_hint(arch, weights)) from exc
        raise EngineError(f"Could not build {arch}: {exc}") from exc
    dev = pick_device(device)
    model = model.to(dev).eval()
    image_size = model.visual.image_size
    image_size = image_size[0] if isinstance(image_size, tuple | list) else image_size
    return LoadedModel(
        model=model,
        preprocess=preprocess,
        tokenizer=open_clip.get_tokenizer(arch),
        device=dev,
        arch=arch,
        weights=weights,
        logit_scale=float(model.logit_scale.exp().item()),
        image_size=int(image_size),
        cpu_precision=cpu_precision,
    )


_MODELS: dict[tuple[str, str, str | None], LoadedModel] = {}


def get_model(
    arch: str,
    weights: str = "",
    *,
    device: str | None = None,
    cpu_precision: str = "auto",
    hub_offline: bool = False,
) -> LoadedModel:
    """`load_model`, once per process (a worker keeps its model between chunks)."""
    key = (arch, weights, device)
    if key not in _MODELS:
        _MODELS.clear()  # one model at a time: GPU memory is the scarce thing
        _MODELS[key] = load_model(
            arch, weights, device=device, cpu_precision=cpu_precision, hub_offline=hub_offline
        )
    loaded = _MODELS[key]
    loaded.cpu_precision = cpu_precision  # a precision change needs no reload
    return loaded


def write_random_checkpoint(path: Path, *, arch: str = TINY_MODEL, seed: int = 0) -> Path:
    """Save a randomly initialised `arch` as a state dict, loadable by
    `open_clip.create_model_and_transforms(arch, pretrained=path)` (tests, offline demo)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = open_clip.create_model(arch, pretrained=None)
    torch.save(model.state_dict(), path)
    return path


# --- images --------------------------------------------------------------------------------


def image_size_problem(
    width: int, height: int, *, max_pixels: int, max_aspect_ratio: float
) -> BadImage | None:
    """The reason an image of this size is refused before decoding, if any: too many pixels
    (a decompression bomb), or a shape so elongated that resizing its short side to the
    model's input size would need gigabytes (1 x 89,000 passes the pixel limit)."""
    if width * height > max_pixels:
        return BadImage(
            "decompression bomb", f"{width}x{height} pixels is over the limit of {max_pixels}"
        )
    ratio = max(width, height) / max(1, min(width, height))
    if ratio > max_aspect_ratio:
        return BadImage(
            "extreme aspect ratio",
            f"{width}x{height} is {ratio:.0f}:1, over the limit of {max_aspect_ratio:g}:1",
        )
    return None


def load_image(
    path: str | Path,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_aspect_ratio: float = DEFAULT_MAX_ASPECT_RATIO,
    draft: int = 0,
):
    """Decode one image to RGB, or raise BadImage with a reason. Handles EXIF rotation,
    CMYK, 16-bit, palette+alpha and animated images (frame 0); refuses decompression bombs
    and extreme aspect ratios before decoding any pixel. `draft` lets JPEG decode at a
    reduced scale (>= draft px)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            source = Image.open(path)
    except FileNotFoundError:
        raise BadImage("missing file", str(path)) from None
    except Image.DecompressionBombError as exc:
        raise BadImage("decompression bomb", str(exc)) from None
    except UnidentifiedImageError:
        raise BadImage("not an image") from None
    except OSError as exc:
        raise BadImage("unreadable", str(exc)) from None
    img: Image.Image = source
    try:
        width, height = img.size
        problem = image_size_problem(
            width, height, max_pixels=max_pixels, max_aspect_ratio=max_aspect_ratio
        )
        if problem is not None:
            raise problem
        if getattr(img, "n_frames", 1) > 1:
            img.seek(0)
        if draft and img.format == "JPEG":
            img.draft("RGB", (draft, draft))
        img.load()
        with contextlib.suppress(Exception):  # a broken EXIF block must not lose the image
            img = ImageOps.exif_transpose(img)
        return to_rgb(img)
    except BadImage:
        raise
    except OSError as exc:
        if "truncated" in str(exc):
            raise BadImage("truncated", str(exc)) from None
        raise BadImage("unreadable", str(exc)) from None
    except Exception as exc:  # any decoder bug is the image's problem, never the run's
        raise BadImage("unreadable", f"{type(exc).__name__}: {exc}") from None
    finally:
        source.close()  # the returned image is a converted copy; animated files keep fds open


def to_rgb(img):
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 16-bit (or float) grey: scale to 8 bits instead of clipping at 255.
        arr = np.asarray(img, dtype=np.float32)
        top = 65535.0 if arr.max(initial=0) > 255 else 255.0
        arr = np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


class _ImageFiles(torch.utils.data.Dataset):
    """Decode + preprocess in DataLoader worker processes; bad images become a marker."""

    def __init__(
        self,
        paths: Sequence[str],
        transform,
        *,
        max_pixels: int,
        max_aspect_ratio: float,
        draft: int,
    ) -> None:
        self.paths = paths
        self.transform = transform
        self.max_pixels = max_pixels
        self.max_aspect_ratio = max_aspect_ratio
        self.draft = draft

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        path = self.paths[index]
        if not path:
            return index, None, ("no image", "")
        try:
            img = load_image(
                path,
                max_pixels=self.max_pixels,
                max_aspect_ratio=self.max_aspect_ratio,
                draft=self.draft,
            )
            return index, self.transform(img), None
        except BadImage as exc:
            return index, None, (exc.reason, exc.detail)
        except Exception as exc:  # preprocessing failure: mark, never crash the run
            return index, None, (f"unreadable ({type(exc).__name__})", str(exc)[:300])


def _collate(batch):
    good = [(i, t) for i, t, _ in batch if t is not None]
    bad = [(i, *problem) for i, t, problem in batch if t is None]
    tensor = torch.stack([t for _, t in good]) if good else None
    return [i for i, _ in good], tensor, bad


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # decode workers must not fight the forward pass for cores


@dataclass
class ImageBatch:
    positions: list[int]  # indices into `paths` of the encoded images
    embeddings: np.ndarray  # float32 [len(positions), D], L2-normalised
    # (index into `paths`, reason, detail): `reason` is a short category for counting,
    # `detail` says exactly what was wrong with this file (may be empty).
    failures: list[tuple[int, str, str]]


def encode_image_batches(
    loaded: LoadedModel,
    paths: Sequence[str],
    *,
    batch_size: int = 64,
    workers: int = 2,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_aspect_ratio: float = DEFAULT_MAX_ASPECT_RATIO,
) -> Iterator[ImageBatch]:
    """Encode images batch by batch (the caller may stop between batches). An empty path
    means the item has no usable image ("no image")."""
    if not paths:
        return
    files = _ImageFiles(
        list(paths),
        loaded.preprocess,
        max_pixels=max_pixels,
        max_aspect_ratio=max_aspect_ratio,
        draft=loaded.image_size,
    )
    loader = torch.utils.data.DataLoader(
        files,
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=_collate,
        pin_memory=loaded.device.type == "cuda",
        worker_init_fn=_worker_init if workers else None,
        prefetch_factor=2 if workers else None,  # bounded memory: workers x 2 batches
    )
    for positions, tensor, failures in loader:
        if tensor is None:
            embeddings = np.zeros((0, 0), np.float32)
        else:
            with torch.inference_mode(), loaded.autocast:
                features = loaded.model.encode_image(tensor.to(loaded.device, non_blocking=True))
            # Normalised in fp32, whatever precision the forward pass ran in.
            features = torch.nn.functional.normalize(features.float(), dim=-1)
            embeddings = features.cpu().numpy()
        yield ImageBatch(positions=positions, embeddings=embeddings, failures=failures)


# --- texts ---------------------------------------------------------------------------------


def _encode_tokens(model, tokens: torch.Tensor) -> torch.Tensor:
    """`model.encode_text(tokens, normalize=True)`, but only over the context actually used.

    CLIP's text tower is causal and pools at the end-of-text token, so the padding after it
    cannot change the result; cutting the 77-token context to the longest prompt (about 10
    tokens) makes encoding a taxonomy several times faster on a CPU. Other text towers
    (HF, custom) take the plain path."""
    plain = (
        getattr(model, "text_pool_type", None) != "argmax"
        or getattr(model, "attn_mask", None) is None
        or not hasattr(model, "positional_embedding")
        or not hasattr(model, "token_embedding")
    )
    if plain:
        return model.encode_text(tokens, normalize=True)
    used = int(tokens.argmax(dim=-1).max().item()) + 1  # the end-of-text id is the largest
    tokens = tokens[:, :used]
    cast_dtype = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast_dtype)
    x = x + model.positional_embedding[:used].to(cast_dtype)
    x = model.transformer(x, attn_mask=model.attn_mask[:used, :used])
    x = model.ln_final(x)
    x = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]
    if model.text_projection is not None:
        if isinstance(model.text_projection, torch.nn.Linear):
            x = model.text_projection(x)
        else:
            x = x @ model.text_projection
    return torch.nn.functional.normalize(x, dim=-1)


def encode_texts(
    loaded: LoadedModel, texts: Sequence[str | Sequence[str]], *, batch_size: int = 256
) -> np.ndarray:
    """L2-normalised text embeddings [len(texts), D]. An entry that is a list of strings
    (several prompt templates for one label) is averaged in embedding space, then
    re-normalised."""
    groups = [[t] if isinstance(t, str) else list(t) for t in texts]
    flat = [t for group in groups for t in group]
    if not flat:
        return np.zeros((0, 0), np.float32)
    chunks = []
    for start in range(0, len(flat), batch_size):
        tokens = loaded.tokenizer(flat[start : start + batch_size]).to(loaded.device)
        # Prompts are encoded once per run: fp32 on the CPU costs nothing and keeps label
        # embeddings independent of batch composition.
        precision = loaded.autocast if loaded.device.type == "cuda" else contextlib.nullcontext()
        with torch.inference_mode(), precision:
            chunks.append(_encode_tokens(loaded.model, tokens).float().cpu())
    features = torch.cat(chunks)
    out, pos = [], 0
    for group in groups:
        mean = features[pos : pos + len(group)].mean(dim=0)
        out.append(mean / mean.norm().clamp_min(1e-12))
        pos += len(group)
    return torch.stack(out).numpy()


# --- the computations (docs/architecture.md) -----------------------------------------------

ENSEMBLES = ("image", "weighted", "conditional")


def mix_ensemble(p_img, p_txt, *, mode: str, w_img: float, w_txt: float, tau: float):
    """The ensembles on probability rows (torch tensors): `weighted` is
    w_img·P_img + w_txt·P_txt; `conditional` keeps P_img where max P_img >= tau, else takes the
    weighted mix. Shared by `score` and the probe (classifier/probe.py)."""
    mixed = w_img * p_img + w_txt * p_txt
    if mode == "weighted":
        return mixed
    if mode == "conditional":
        sure = p_img.max(dim=-1, keepdim=True).values >= tau
        return torch.where(sure, p_img, mixed)
    raise ValueError(f"unknown ensemble {mode!r}")


@dataclass
class Scores:
    top_labels: np.ndarray  # int64 [N, k], indices into the label list, best first
    top_probs: np.ndarray  # float32 [N, k]
    image_max: np.ndarray  # float32 [N], max P_img
    text_max: np.ndarray | None  # float32 [N], max P_txt (NaN where there is no caption)
    image_top: np.ndarray | None = None  # int64 [N], argmax P_img (index into the labels)
    text_top: np.ndarray | None = None  # int64 [N], argmax P_txt (-1 where there is no caption)


def score(
    image_features: np.ndarray,
    label_features: np.ndarray,
    logit_scale: float,
    *,
    caption_features: np.ndarray | None = None,
    has_caption: np.ndarray | None = None,
    mode: str = "image",
    w_img: float = 0.8,
    w_txt: float = 0.2,
    tau: float = 0.6,
    k: int = 5,
    block: int = 32768,
    bias: np.ndarray | None = None,
    text_label_features: np.ndarray | None = None,
    text_bias: np.ndarray | None = None,
) -> Scores:
    """Zero-shot P = softmax(s · f·t_k) over the K labels, the ensemble, then top-k, for many
    items in blocks (1M x 365 fits in memory). Items without a caption (has_caption False) are
    scored by the image alone. The one scoring path of GPU chunks, cache re-scoring and probe
    runs (a probe's head is `label_features` with the scale inside, logit_scale 1, and `bias`
    added to every logit row; captions may have a head of their own, `text_label_features`
    and `text_bias`: docs/architecture.md#probe)."""
    if mode not in ENSEMBLES:
        raise ValueError(f"unknown ensemble {mode!r}")
    n = len(image_features)
    k = min(k, len(label_features))
    labels = torch.as_tensor(label_features, dtype=torch.float32)
    shift = None if bias is None else torch.as_tensor(np.asarray(bias, np.float32))
    text_labels = labels
    if text_label_features is not None:
        text_labels = torch.as_tensor(text_label_features, dtype=torch.float32)
    text_shift = shift if text_bias is None else torch.as_tensor(np.asarray(text_bias, np.float32))
    captions = caption_features if mode != "image" else None
    top_labels = np.empty((n, k), np.int64)
    top_probs = np.empty((n, k), np.float32)
    image_max = np.empty(n, np.float32)
    text_max = np.full(n, np.nan, np.float32)
    image_top = np.empty(n, np.int64)
    text_top = np.full(n, -1, np.int64)
    for start in range(0, n, block):
        stop = min(start + block, n)
        img = torch.as_tensor(image_features[start:stop]).float()
        logits = logit_scale * (img @ labels.T)
        p_img = torch.softmax(logits if shift is None else logits + shift, dim=-1)
        if captions is None:
            # Softmax then top-k: the hot loop of re-scoring a million items.
            values, indices = torch.topk(p_img, k, dim=-1)
            top_labels[start:stop] = indices.numpy()
            top_probs[start:stop] = values.numpy()
            image_max[start:stop] = values[:, 0].numpy()
            image_top[start:stop] = indices[:, 0].numpy()
            continue
        best_img = p_img.max(dim=-1)
        image_max[start:stop] = best_img.values.numpy()
        image_top[start:stop] = best_img.indices.numpy()
        cap = torch.as_tensor(captions[start:stop]).float()
        text_logits = logit_scale * (cap @ text_labels.T)
        p_txt = torch.softmax(
            text_logits if text_shift is None else text_logits + text_shift, dim=-1
        )
        p = mix_ensemble(p_img, p_txt, mode=mode, w_img=w_img, w_txt=w_txt, tau=tau)
        txt_max, txt_top = p_txt.max(dim=-1)
        if has_caption is not None:
            mask = torch.as_tensor(np.asarray(has_caption[start:stop], bool))
            p = torch.where(mask[:, None], p, p_img)
            txt_max = torch.where(mask, txt_max, torch.full_like(txt_max, float("nan")))
            txt_top = torch.where(mask, txt_top, torch.full_like(txt_top, -1))
        text_max[start:stop] = txt_max.numpy()
        text_top[start:stop] = txt_top.numpy()
        values, indices = torch.topk(p, k, dim=-1)
        top_labels[start:stop] = indices.numpy()
        top_probs[start:stop] = values.numpy()
    with_text = captions is not None
    return Scores(
        top_labels, top_probs, image_max, text_max if with_text else None,
        image_top, text_top if with_text else None,
    )  # fmt: skip
