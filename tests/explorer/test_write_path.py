"""The image-only and caption-only top labels, from `engine.score` to the database, through
both write paths (COPY for re-scoring and imports, upserts for GPU chunks)."""

import numpy as np
import pytest

from classifier import engine
from classifier.models import ClassificationRun, Prediction, shuffle_of
from classifier.services import predictions_write

pytestmark = pytest.mark.django_db


def unit(rows) -> np.ndarray:
    rows = np.asarray(rows, np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_score_gives_the_image_and_caption_argmax() -> None:
    labels = unit(np.eye(3))
    images = unit([[1, 0.1, 0], [0, 1, 0.2], [0, 0, 1]])
    captions = unit([[0, 1, 0], [0, 1, 0], [1, 0, 0]])
    scores = engine.score(images, labels, 100.0, caption_features=captions,
                          has_caption=np.array([True, True, False]), mode="weighted")  # fmt: skip
    assert scores.image_top.tolist() == [0, 1, 2]
    assert scores.text_top.tolist() == [1, 1, -1]  # no caption: none
    image_only = engine.score(images, labels, 100.0, mode="image")
    assert image_only.image_top.tolist() == [0, 1, 2]
    assert image_only.text_top is None


@pytest.mark.parametrize("replace", [True, False])
def test_both_write_paths_store_the_top_labels(explored, dataset, taxonomy, replace) -> None:
    run = ClassificationRun.objects.create(dataset=dataset, taxonomy=taxonomy, status="running")
    items = explored.items[:3]
    label_ids = np.array([label.pk for label in explored.labels])
    predictions_write(
        run_id=run.pk, item_ids=np.array([i.pk for i in items]), label_ids=label_ids,
        top_labels=np.array([[0, 1], [1, 0], [2, 1]]), top_probs=np.array([[0.6, 0.4]] * 3),
        image_max=np.array([0.6, 0.5, 0.4]), text_max=np.array([0.3, np.nan, 0.2]),
        image_top=np.array([0, 1, 2]), text_top=np.array([3, -1, 2]), replace=replace,
    )  # fmt: skip
    rows = list(Prediction.objects.filter(run=run).order_by("item_id"))
    assert [p.image_label_id for p in rows] == [int(label_ids[i]) for i in (0, 1, 2)]
    assert [p.text_label_id for p in rows] == [int(label_ids[3]), None, int(label_ids[2])]
    assert [p.text_probability for p in rows] == [0.3, None, 0.2]
    assert [p.shuffle for p in rows] == [shuffle_of(i.pk) for i in items]
