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


# --- the computations, checked by hand -----------------------------------------------------
# Labels t1 = (1, 0), t2 = (0, 1); image e = (1, 0); caption c = (0, 1); s = ln 3, so
# P_img = softmax(ln3, 0) = (3/4, 1/4) and P_txt = (1/4, 3/4).
LABELS = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
IMAGE = np.array([[1.0, 0.0]], np.float32)
CAPTION = np.array([[0.0, 1.0]], np.float32)
S = math.log(3)


def test_zero_shot_uses_the_given_logit_scale() -> None:
    np.testing.assert_allclose(engine.zero_shot(IMAGE, LABELS, S), [[0.75, 0.25]], atol=1e-6)
    np.testing.assert_allclose(engine.zero_shot(CAPTION, LABELS, S), [[0.25, 0.75]], atol=1e-6)


def test_ensembles_by_hand() -> None:
    p_img, p_txt = engine.zero_shot(IMAGE, LABELS, S), engine.zero_shot(CAPTION, LABELS, S)
    np.testing.assert_allclose(engine.ensemble(p_img, p_txt, mode="image"), [[0.75, 0.25]])
    # 0.8 * (3/4, 1/4) + 0.2 * (1/4, 3/4) = (0.65, 0.35)
    np.testing.assert_allclose(
        engine.ensemble(p_img, p_txt, mode="weighted"), [[0.65, 0.35]], atol=1e-6
    )
    np.testing.assert_allclose(
        engine.ensemble(p_img, p_txt, mode="weighted", w_img=0.5, w_txt=0.5), [[0.5, 0.5]]
    )
    # max P_img = 0.75 >= 0.6: P_img; with tau 0.8 it falls back to the weighted mix.
    np.testing.assert_allclose(engine.ensemble(p_img, p_txt, mode="conditional"), [[0.75, 0.25]])
    np.testing.assert_allclose(
        engine.ensemble(p_img, p_txt, mode="conditional", tau=0.8), [[0.65, 0.35]], atol=1e-6
    )


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
    assert scores.text_max[0] == pytest.approx(0.75) and np.isnan(scores.text_max[1])
    # weights that make the caption win flip the prediction
    flipped = engine.score(IMAGE, LABELS, S, caption_features=CAPTION, mode="weighted",
                           w_img=0.2, w_txt=0.8)  # fmt: skip
    assert flipped.top_labels[0, 0] == 1 and flipped.top_probs[0, 0] == pytest.approx(0.65)


def test_one_label_gives_probability_one() -> None:
    scores = engine.score(IMAGE, LABELS[:1], S)
    assert scores.top_labels.tolist() == [[0]] and scores.top_probs[0, 0] == pytest.approx(1.0)


# --- loading -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tiny_checkpoint):
    return engine.load_model(engine.TINY_MODEL, str(tiny_checkpoint), device="cpu")


def test_random_checkpoint_loads_through_open_clip(tiny_checkpoint, tiny) -> None:
    model, _, _ = open_clip.create_model_and_transforms(
        "sieve-tiny", pretrained=str(tiny_checkpoint)
    )
    saved = torch.load(tiny_checkpoint, weights_only=True)
    assert isinstance(saved, dict) and "logit_scale" in saved
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, saved[name]), name
    assert tiny.logit_scale == pytest.approx(1 / 0.07, rel=1e-5)  # the model's own scale
    assert tiny.device.type == "cpu" and tiny.image_size == 32


def test_templates_are_averaged_in_embedding_space(tiny) -> None:
    a, b = "A photo of a beach.", "A blurry photo of a beach."
    single = engine.encode_texts(tiny, [a, b])
    averaged = engine.encode_texts(tiny, [[a, b]])
    expected = single.mean(axis=0)
    np.testing.assert_allclose(averaged[0], expected / np.linalg.norm(expected), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(single, axis=1), [1, 1], atol=1e-5)
    assert engine.label_prompts(["beach"], ["a {}", "the {}."]) == [["a beach", "the beach."]]


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
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache
    started = time.monotonic()
    with pytest.raises(engine.WeightsUnavailable, match="--weights /path/to/checkpoint.pt"):
        engine.load_model("ViT-B-32", "openai")
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
     ("missing", "missing file")],
)  # fmt: skip
def test_load_image_refuses_with_a_reason(images, kind, reason) -> None:
    with pytest.raises(engine.BadImage) as info:
        engine.load_image(images[kind], max_pixels=1_000_000)
    assert info.value.reason == reason


def test_encode_batches_mark_bad_images_and_go_on(tiny, images) -> None:
    paths = [images[k] for k in ("ok", "junk", "cmyk", "truncated", "bomb", "16bit")] + [""]
    batches = list(
        engine.encode_image_batches(tiny, paths, batch_size=3, workers=2, max_pixels=1_000_000)
    )
    positions = [p for b in batches for p in b.positions]
    failures = dict(f for b in batches for f in b.failures)
    assert sorted(positions) == [0, 2, 5]
    assert failures == {1: "not an image", 3: "truncated", 4: "decompression bomb", 6: "no image"}
    embeddings = np.concatenate([b.embeddings for b in batches if b.positions])
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1, atol=1e-5)


def test_cpu_bf16_embeddings_agree_with_fp32(tiny, images, monkeypatch) -> None:
    """CPU inference may run in bf16 (SIEVE_CPU_PRECISION); it must not change what is seen."""
    paths = [images["ok"], images["cmyk"], images["16bit"]]

    def embed(precision: str) -> np.ndarray:
        monkeypatch.setenv("SIEVE_CPU_PRECISION", precision)
        batches = engine.encode_image_batches(tiny, paths, batch_size=3, workers=0)
        return np.concatenate([b.embeddings for b in batches])

    fp32, bf16 = embed("fp32"), embed("bf16")
    assert fp32.shape == bf16.shape == (3, fp32.shape[1])
    cosine = (fp32 * bf16).sum(axis=1)
    assert cosine.min() > 0.99
    assert not np.array_equal(fp32, bf16)  # bf16 really ran
