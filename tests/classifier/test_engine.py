"""classifier.engine on the tiny config: loading, decoding bad images, hand-checked ensembles."""

import io
import math
import time
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from classifier import engine

pytestmark = pytest.mark.torch


# --- the computations, checked by hand through score(), the code production runs -----------
# Labels t1 = (1, 0), t2 = (0, 1); image e = (1, 0); caption c = (0, 1); s = ln 3, so
# P_img = softmax(ln3, 0) = (3/4, 1/4) and P_txt = (1/4, 3/4).
LABELS = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
IMAGE = np.array([[1.0, 0.0]], np.float32)
CAPTION = np.array([[0.0, 1.0]], np.float32)
S = math.log(3)


def scored(mode: str, **kw) -> list[float]:
    """P over (t1, t2) for the example, from the top-k that score() returns."""
    scores = engine.score(IMAGE, LABELS, S, caption_features=CAPTION, mode=mode, **kw)
    p = np.zeros(2)
    p[scores.top_labels[0]] = scores.top_probs[0]
    return p.tolist()


def test_zero_shot_uses_the_given_logit_scale() -> None:
    assert scored("image") == pytest.approx([0.75, 0.25], abs=1e-6)
    assert engine.score(CAPTION, LABELS, S).top_probs[0].tolist() == pytest.approx([0.75, 0.25])
    assert engine.score(CAPTION, LABELS, S).top_labels[0].tolist() == [1, 0]  # t2 first


def test_weighted_ensemble_by_hand() -> None:
    # 0.8 * (3/4, 1/4) + 0.2 * (1/4, 3/4) = (0.65, 0.35)
    assert scored("weighted") == pytest.approx([0.65, 0.35], abs=1e-6)
    assert scored("weighted", w_img=0.5, w_txt=0.5) == pytest.approx([0.5, 0.5], abs=1e-6)
    # 0.2 * (3/4, 1/4) + 0.8 * (1/4, 3/4) = (0.35, 0.65): the caption wins
    assert scored("weighted", w_img=0.2, w_txt=0.8) == pytest.approx([0.35, 0.65], abs=1e-6)


def test_conditional_ensemble_by_hand() -> None:
    # max P_img = 0.75 >= tau 0.6: P_img alone
    assert scored("conditional") == pytest.approx([0.75, 0.25], abs=1e-6)
    assert scored("conditional", tau=0.75) == pytest.approx([0.75, 0.25], abs=1e-6)  # >= tau
    # tau 0.8 > 0.75: the weighted mix
    assert scored("conditional", tau=0.8) == pytest.approx([0.65, 0.35], abs=1e-6)
    assert scored("conditional", tau=0.8, w_img=0.2, w_txt=0.8) == pytest.approx(
        [0.35, 0.65], abs=1e-6
    )


def test_ensembles_per_item_in_one_call() -> None:
    """Two items: one sure image (P_img = (3/4, 1/4)), one unsure (e = (0.6, 0.8) gives P_img
    = softmax(0.6 ln3, 0.8 ln3) = (1, 3^0.2) / (1 + 3^0.2)); the conditional ensemble keeps
    the first and mixes the second."""
    images = np.array([[1.0, 0.0], [0.6, 0.8]], np.float32)
    captions = np.repeat(CAPTION, 2, axis=0)
    p_unsure = np.array([1.0, 3**0.2]) / (1 + 3**0.2)
    mixed = 0.8 * p_unsure + 0.2 * np.array([0.25, 0.75])
    scores = engine.score(images, LABELS, S, caption_features=captions, mode="conditional")
    assert scores.top_labels.tolist() == [[0, 1], [1, 0]]
    np.testing.assert_allclose(scores.top_probs[0], [0.75, 0.25], atol=1e-6)
    np.testing.assert_allclose(scores.top_probs[1], sorted(mixed, reverse=True), atol=1e-6)
    np.testing.assert_allclose(scores.image_max, [0.75, p_unsure.max()], atol=1e-6)
    np.testing.assert_allclose(scores.text_max, [0.75, 0.75], atol=1e-6)


def test_score_top_k_and_missing_captions() -> None:
    images = np.repeat(IMAGE, 2, axis=0)
    captions = np.repeat(CAPTION, 2, axis=0)
    scores = engine.score(
        images, LABELS, S, caption_features=captions, has_caption=np.array([True, False]),
        mode="weighted", k=5,
    )  # fmt: skip
    assert scores.top_labels.tolist() == [[0, 1], [0, 1]]  # k is capped at the label count
    np.testing.assert_allclose(scores.top_probs, [[0.65, 0.35], [0.75, 0.25]], atol=1e-6)
    np.testing.assert_allclose(scores.image_max, [0.75, 0.75], atol=1e-6)
    assert scores.text_max[0] == pytest.approx(0.75)
    assert np.isnan(scores.text_max[1])
    with pytest.raises(ValueError, match="unknown ensemble"):
        engine.score(IMAGE, LABELS, S, caption_features=CAPTION, mode="average")


def test_one_label_gives_probability_one() -> None:
    scores = engine.score(IMAGE, LABELS[:1], S)
    assert scores.top_labels.tolist() == [[0]]
    assert scores.top_probs[0, 0] == pytest.approx(1.0)


# --- loading -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tiny_checkpoint):
    return engine.load_model(engine.TINY_MODEL, str(tiny_checkpoint), device="cpu")


def test_random_checkpoint_loads_through_open_clip(tiny_checkpoint, tiny) -> None:
    model, _, _ = open_clip.create_model_and_transforms(
        "sieve-tiny", pretrained=str(tiny_checkpoint)
    )
    saved = torch.load(tiny_checkpoint, weights_only=True)
    assert isinstance(saved, dict)
    assert "logit_scale" in saved
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, saved[name]), name
    assert tiny.logit_scale == pytest.approx(1 / 0.07, rel=1e-5)  # the model's own scale
    assert tiny.device.type == "cpu"
    assert tiny.image_size == 32


def test_templates_are_averaged_in_embedding_space(tiny) -> None:
    a, b = "A photo of a beach.", "A blurry photo of a beach."
    single = engine.encode_texts(tiny, [a, b])
    averaged = engine.encode_texts(tiny, [[a, b]])
    expected = single.mean(axis=0)
    np.testing.assert_allclose(averaged[0], expected / np.linalg.norm(expected), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(single, axis=1), [1, 1], atol=1e-5)


def test_load_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(engine.EngineError, match="Unknown architecture 'ViT-Z-99'"):
        engine.load_model("ViT-Z-99", "")
    with pytest.raises(engine.EngineError, match="Checkpoint not found"):
        engine.load_model("sieve-tiny", str(tmp_path / "missing.pt"))
    not_a_state_dict = tmp_path / "list.pt"
    torch.save([1, 2, 3], not_a_state_dict)
    with pytest.raises(engine.EngineError, match="not a usable sieve-tiny checkpoint"):
        engine.load_model("sieve-tiny", str(not_a_state_dict))
    wrong_keys = tmp_path / "other.pt"
    torch.save({"weight": torch.zeros(2)}, wrong_keys)
    with pytest.raises(engine.EngineError, match="state dict"):
        engine.load_model("sieve-tiny", str(wrong_keys))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(engine.EngineError, match="not a usable"):
        engine.load_model("sieve-tiny", str(garbage))


def test_hub_tag_offline_fails_fast(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache
    started = time.monotonic()
    with pytest.raises(engine.WeightsUnavailable, match=r"--weights /path/to/checkpoint\.pt"):
        engine.load_model("ViT-B-32", "openai", hub_offline=True)
    assert time.monotonic() - started < 10


# --- decoding bad images -------------------------------------------------------------------


def save(img: Image.Image, path: Path, fmt: str, **kw) -> str:
    img.save(path, fmt, **kw)
    return str(path)


@pytest.fixture
def images(tmp_path: Path) -> dict[str, str]:
    rgb = Image.new("RGB", (40, 20), (200, 30, 30))
    out = {"ok": save(rgb, tmp_path / "ok.jpg", "JPEG")}
    out["cmyk"] = save(rgb.convert("CMYK"), tmp_path / "cmyk.jpg", "JPEG")
    sixteen = Image.fromarray(np.full((20, 40), 65535 // 2, np.uint16))
    out["16bit"] = save(sixteen, tmp_path / "16.png", "PNG")
    palette = Image.new("P", (40, 20), 1)
    palette.putpalette([0, 0, 0, 255, 0, 0] * 128)
    out["palette_alpha"] = save(palette, tmp_path / "pa.png", "PNG", transparency=1)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90°: stored 40x20, shown 20x40
    out["rotated"] = save(rgb, tmp_path / "rot.jpg", "JPEG", exif=exif)
    frames = [Image.new("RGB", (40, 20), c) for c in [(0, 255, 0), (0, 0, 255)]]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=50)
    out["animated"] = str(tmp_path / "anim.gif")
    buf = io.BytesIO()
    Image.new("RGB", (400, 300), (1, 2, 3)).save(buf, "JPEG")
    (tmp_path / "trunc.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    out["truncated"] = str(tmp_path / "trunc.jpg")
    (tmp_path / "junk.jpg").write_bytes(b"\x00garbage" * 20)
    out["junk"] = str(tmp_path / "junk.jpg")
    out["bomb"] = save(Image.new("L", (3000, 3000)), tmp_path / "bomb.png", "PNG")
    out["strip"] = save(Image.new("L", (1, 500)), tmp_path / "strip.png", "PNG")
    out["missing"] = str(tmp_path / "missing.jpg")
    return out


def test_load_image_handles_odd_but_valid_images(images) -> None:
    for kind in ("ok", "cmyk", "16bit", "palette_alpha", "rotated", "animated"):
        img = engine.load_image(images[kind])
        assert img.mode == "RGB", kind
    assert engine.load_image(images["rotated"]).size == (20, 40)
    assert engine.load_image(images["16bit"]).getpixel((0, 0))[0] == pytest.approx(127, abs=1)
    # palette index 1 is transparent: composited on white, not black
    assert engine.load_image(images["palette_alpha"]).getpixel((0, 0)) == (255, 255, 255)
    assert engine.load_image(images["animated"]).getpixel((0, 0)) == (0, 255, 0)  # frame 0


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("truncated", "truncated"), ("junk", "not an image"), ("bomb", "decompression bomb"),
     ("missing", "missing file"), ("strip", "extreme aspect ratio")],
)  # fmt: skip
def test_load_image_refuses_with_a_reason(images, kind, reason) -> None:
    with pytest.raises(engine.BadImage) as info:
        engine.load_image(images[kind], max_pixels=1_000_000, max_aspect_ratio=20)
    assert info.value.reason == reason


def test_aspect_ratio_limit_is_an_argument(images) -> None:
    with pytest.raises(engine.BadImage) as info:
        engine.load_image(images["strip"], max_aspect_ratio=499)
    assert info.value.detail == "1x500 is 500:1, over the limit of 499:1"
    assert engine.load_image(images["strip"], max_aspect_ratio=500).size == (1, 500)
    assert engine.load_image(images["ok"], max_aspect_ratio=2).size == (40, 20)  # 2:1 exactly


def test_encode_batches_mark_bad_images_and_go_on(tiny, images) -> None:
    kinds = ("ok", "junk", "cmyk", "truncated", "bomb", "16bit", "strip")
    paths = [images[k] for k in kinds] + [""]
    batches = list(
        engine.encode_image_batches(
            tiny, paths, batch_size=3, workers=2, max_pixels=1_000_000, max_aspect_ratio=20
        )
    )
    positions = [p for b in batches for p in b.positions]
    failures = {index: reason for b in batches for index, reason, _ in b.failures}
    assert sorted(positions) == [0, 2, 5]
    assert failures == {
        1: "not an image", 3: "truncated", 4: "decompression bomb", 6: "extreme aspect ratio",
        7: "no image",
    }  # fmt: skip
    details = {index: detail for b in batches for index, _, detail in b.failures}
    assert details[4] == "3000x3000 pixels is over the limit of 1000000"
    embeddings = np.concatenate([b.embeddings for b in batches if b.positions])
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1, atol=1e-5)


def test_cpu_bf16_embeddings_agree_with_fp32(tiny, images, monkeypatch) -> None:
    """CPU inference may run in bf16 (SIEVE_CPU_PRECISION); it must not change what is seen."""
    paths = [images["ok"], images["cmyk"], images["16bit"]]

    def embed(precision: str) -> np.ndarray:
        monkeypatch.setattr(tiny, "cpu_precision", precision)
        batches = engine.encode_image_batches(tiny, paths, batch_size=3, workers=0)
        return np.concatenate([b.embeddings for b in batches])

    fp32, bf16 = embed("fp32"), embed("bf16")
    assert fp32.shape == bf16.shape == (3, fp32.shape[1])
    cosine = (fp32 * bf16).sum(axis=1)
    assert cosine.min() > 0.99
    assert not np.array_equal(fp32, bf16)  # bf16 really ran
