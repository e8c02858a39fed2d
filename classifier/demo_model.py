"""The offline demo's model: the tiny open_clip architecture (`sieve-tiny`) trained from
scratch on the CPU for a minute or less (400 steps: seconds on an idle machine), with
open_clip's contrastive loss, on the demo's drawings and their scenes' Places365 prompts.
See docs/architecture.md#demo.

Torch and open_clip only, no Django: the caller draws the images and builds the prompts
exactly as a run does (`Label.prompts()`), and saves the result where runs load checkpoints.

What it is: a picture of the pipeline that can be right and wrong, trained on drawings. What
it is not: CLIP. Its accuracy says nothing about any real model.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import open_clip
import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss
from PIL import Image

from classifier.engine import TINY_MODEL

# Bump when the training code changes (loss, batches), so an old checkpoint is retrained
# instead of kept; the recipe's fields, the prompts and the drawings are in the stamp already.
RECIPE_VERSION = 1
STAMP_KEY = "sieve_demo"
MAX_LOGIT_SCALE = math.log(100.0)  # CLIP's clamp


@dataclass(frozen=True)
class Recipe:
    """Everything that decides the weights: equal recipes give equal checkpoints."""

    steps: int
    seed: int = 0
    groups: int = 8  # contrastive groups per step; each scene once per group
    lr: float = 2e-3
    negatives: int = 64  # other labels' prompts per step, drawn at random
    negative_weight: float = 1.0  # the term of the drawings against scenes and negatives
    threads: int = 1  # more threads spin-wait on a busy machine, for no gain on this size
    version: int = RECIPE_VERSION
    arch: str = TINY_MODEL

    def stamp(self, prompts: Sequence[str], *, drawings: str) -> dict[str, Any]:
        """What a saved checkpoint must match to be kept: the recipe, the label prompts and
        a digest of the training drawings."""
        return {**asdict(self), "prompts": list(prompts), "drawings": drawings}


@dataclass(frozen=True)
class Training:
    steps: int
    seconds: float
    loss: float  # mean over the last tenth of the steps
    accuracy: float  # over the training drawings, against every label prompt
    logit_scale: float


@contextmanager
def _deterministic(threads: int, seed: int):
    """A fixed seed and thread count (float sums depend on it); restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _images_tensor(preprocess: Callable[[Image.Image], torch.Tensor], images) -> torch.Tensor:
    return torch.stack([preprocess(image.convert("RGB")) for image in images])


def demo_model_train(
    images: Sequence[Image.Image],
    targets: Sequence[int],
    prompts: Sequence[str],
    *,
    recipe: Recipe,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Any, Training]:
    """Train `recipe.arch` from scratch on `images`, image i showing the scene whose prompt
    is `prompts[targets[i]]`. `prompts` are every label's prompt of the taxonomy (the scenes'
    and the rest): the scenes' prompts are the positives, the others negatives, so labels
    the drawings never show do not attract them.

    Each step holds `groups` groups of one drawing per scene: open_clip's ClipLoss within a
    group (no false negatives: each scene once), plus cross-entropy of each drawing against
    the scenes' prompts and `recipe.negatives` other prompts drawn at random, as zero-shot
    scoring over the whole taxonomy sees it. Deterministic for a recipe on one machine:
    fixed seeds and thread count."""
    targets_t = torch.as_tensor(list(targets), dtype=torch.long)
    scenes = sorted(set(targets_t.tolist()))
    if len(scenes) < 2:
        raise ValueError("the demo model needs drawings of at least two scenes")
    others = torch.tensor([i for i in range(len(prompts)) if i not in set(scenes)])
    # Drawing i's target as a position among the step's texts (the scenes come first).
    position = torch.full((len(prompts),), -1, dtype=torch.long)
    position[torch.tensor(scenes)] = torch.arange(len(scenes))
    with _deterministic(recipe.threads, recipe.seed):
        model, _, preprocess = open_clip.create_model_and_transforms(recipe.arch)
        model.train()
        # The tokens' random embeddings stay as drawn (a fixed code per word); the text
        # transformer and the projections learn. Half the work of a step.
        model.token_embedding.requires_grad_(False)
        pixels = _images_tensor(preprocess, images)
        tokens = open_clip.get_tokenizer(recipe.arch)(list(prompts))
        by_scene = [torch.nonzero(targets_t == s).flatten() for s in scenes]
        scene_ids = torch.tensor(scenes)
        trained = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trained, lr=recipe.lr, weight_decay=0.05)
        warmup = max(1, recipe.steps // 10)

        def lr_at(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, recipe.steps - warmup)))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
        clip_loss = ClipLoss()
        generator = torch.Generator().manual_seed(recipe.seed)
        losses: list[float] = []
        started = time.monotonic()
        for step in range(recipe.steps):
            # groups x scenes drawings: one of each scene per group.
            picks = torch.stack(
                [
                    rows[torch.randint(len(rows), (recipe.groups,), generator=generator)]
                    for rows in by_scene
                ],
                dim=1,
            ).flatten()
            batch = pixels[picks]
            flip = torch.rand(len(batch), generator=generator) < 0.5
            batch = torch.where(flip[:, None, None, None], batch.flip(-1), batch)
            negatives = others[torch.randperm(len(others), generator=generator)]
            texts = torch.cat([scene_ids, negatives[: recipe.negatives]])
            image_features = F.normalize(model.encode_image(batch), dim=-1)
            text_features = F.normalize(model.encode_text(tokens[texts]), dim=-1)
            scale = model.logit_scale.exp()
            image_groups = image_features.view(recipe.groups, len(scenes), -1)
            scene_text = text_features[: len(scenes)]
            contrastive = torch.stack(
                [clip_loss(group, scene_text, scale) for group in image_groups]
            ).mean()
            against_negatives = F.cross_entropy(
                scale * image_features @ text_features.T, position[targets_t[picks]]
            )
            loss = contrastive + recipe.negative_weight * against_negatives
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
            losses.append(loss.item())
            if progress is not None:
                progress(step + 1, recipe.steps)
        seconds = time.monotonic() - started
        model.eval()
        with torch.no_grad():
            text_features = F.normalize(model.encode_text(tokens), dim=-1)
            found = []
            for start in range(0, len(pixels), 256):
                features = F.normalize(model.encode_image(pixels[start : start + 256]), dim=-1)
                found.append((features @ text_features.T).argmax(dim=-1))
            accuracy = float((torch.cat(found) == targets_t).float().mean())
    tail = losses[-max(1, len(losses) // 10) :]
    return model, Training(
        steps=recipe.steps,
        seconds=seconds,
        loss=sum(tail) / len(tail),
        accuracy=accuracy,
        logit_scale=model.logit_scale.exp().item(),
    )


def demo_model_save(model: Any, path: Path, *, stamp: dict[str, Any]) -> Path:
    """A state dict open_clip loads as any checkpoint (`{"state_dict": ...}`), with the recipe
    stamp beside it; written to a temporary name and renamed, so a killed seed leaves none."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save({"state_dict": model.state_dict(), STAMP_KEY: stamp}, partial)
    partial.replace(path)
    return path


def demo_model_stamp(path: Path) -> dict[str, Any] | None:
    """The recipe stamp of a saved demo checkpoint, or None (no file, not ours, unreadable)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return None
    stamp = checkpoint.get(STAMP_KEY) if isinstance(checkpoint, dict) else None
    return stamp if isinstance(stamp, dict) else None
