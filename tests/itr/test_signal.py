"""The ITR model signal from a real classification run (the tiny random open_clip checkpoint,
run through the `classify` command's synchronous path): similarities equal the cosine of the
cached vectors, the fitted probabilities follow the stored coefficients, the review queue
serves the likeliest errors first; the API and the command; runs that cannot give a signal."""

import json
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from annotate.datasets.models import Item
from annotate.itr.consensus import category_score
from annotate.itr.models import ItrItem, ItrSignal
from annotate.itr.summary import itr_summary
from classifier.cache import cache_dir, cache_load
from classifier.models import ClassificationRun
from tests.classifier.conftest import jpeg_bytes, make_taxonomy, tiny_checkpoint  # noqa: F401
from tests.itr.conftest import api_for

pytestmark = pytest.mark.torch

# 40 tweets: rows 0-23 train, 24-39 test; every label pair appears in both splits.
LABELS = [((n * 7) % 4 // 2, (n * 7) % 4 % 2) for n in range(40)]
SPLIT = 24
NO_IMAGE = {5, 30, 31}  # rows whose tweet has no image


def itr_images(root: Path) -> Path:
    folder = root / "itr"
    folder.mkdir()
    for row in range(len(LABELS)):
        if row not in NO_IMAGE:
            (folder / f"T{1000 + row}.jpg").write_bytes(jpeg_bytes(row))
    return folder


def classify(dataset, checkpoint: Path) -> ClassificationRun:
    make_taxonomy("scenes", ["beach", "kitchen", "street"])
    out = StringIO()
    call_command(
        "classify", dataset.name, "--taxonomy", "scenes", "--model", "sieve-tiny",
        "--weights", str(checkpoint), "--sync", "--json", stdout=out, stderr=StringIO(),
    )  # fmt: skip
    run = ClassificationRun.objects.get(pk=json.loads(out.getvalue().splitlines()[-1])["run"])
    assert run.status == "succeeded"
    return run


@pytest.fixture
def itr_run(make_itr, image_root, tiny_checkpoint):  # noqa: F811
    dataset = make_itr(LABELS, split=SPLIT, name="itrsig", images=itr_images(image_root))
    return dataset, classify(dataset, tiny_checkpoint)


def cached_cosines(run: ClassificationRun) -> dict[int, float]:
    """{item id: cosine} computed here, in float64, from the cache files."""
    cached = cache_load(cache_dir(dataset_id=run.dataset_id, model=run.model, weights=run.weights))
    image = cached.image.astype(np.float64)
    caption = cached.caption.astype(np.float64)
    image /= np.linalg.norm(image, axis=1, keepdims=True)
    caption /= np.linalg.norm(caption, axis=1, keepdims=True)
    cosines = (image * caption).sum(axis=1)
    return dict(zip(cached.item_ids.tolist(), cosines.tolist(), strict=True))


def logistic(fit: dict, similarity: float) -> float:
    return 1 / (1 + np.exp(-(fit["intercept"] + fit["coefficient"] * similarity)))


def test_signal_from_a_real_run(itr_run, lee, reviewers) -> None:
    dataset, run = itr_run
    response = api_for(lee).post(f"/api/itr/{dataset.pk}/signal/", {"run": run.pk}, format="json")
    assert response.status_code == 200, response.content
    result = response.json()
    assert (result["dataset"], result["run"], result["model"]) == (dataset.pk, run.pk, "sieve-tiny")
    assert result["train_items"] == SPLIT - 1  # row 5 has no image
    assert result["test_items"] == len(LABELS) - SPLIT - 2
    assert result["without_embeddings"] == len(NO_IMAGE)
    signal = ItrSignal.objects.get(dataset=dataset)
    assert signal.run == run
    assert signal.details["tasks"] == result["tasks"]

    cosines = cached_cosines(run)
    items = list(ItrItem.objects.filter(dataset=dataset).order_by("row"))
    for item in items:
        if item.row in NO_IMAGE:
            assert (item.similarity, item.p_text, item.p_image, item.model_score) == (None,) * 4
            continue
        assert item.similarity == pytest.approx(cosines[item.item_id], abs=2e-6)
        if item.split == "train":  # the fit's own items keep only their similarity
            assert (item.p_text, item.p_image, item.model_score) == (None, None, None)
            continue
        for task, p in (("text", item.p_text), ("image", item.p_image)):
            assert 0 < p < 1
            fit = result["tasks"][task]
            assert p == pytest.approx(logistic(fit, cosines[item.item_id]), abs=1e-5)
        own_text = item.p_text if item.text_is_represented else 1 - item.p_text
        own_image = item.p_image if item.image_adds else 1 - item.p_image
        assert item.model_score == pytest.approx(own_text * own_image, abs=1e-5)

    # The fit: train AUC is the similarity's own (in the fitted direction), test AUC the fitted
    # probability's against the published labels.
    train = [i for i in items if i.split == "train" and i.similarity is not None]
    test = [i for i in items if i.split == "test" and i.similarity is not None]
    for task, field in (("text", "text_is_represented"), ("image", "image_adds")):
        fit = result["tasks"][task]
        labels = [getattr(i, field) for i in train]
        auc = roc_auc_score(labels, [i.similarity for i in train])
        assert fit["auc_train"] == pytest.approx(
            auc if fit["coefficient"] >= 0 else 1 - auc, abs=1e-4
        )
        assert (fit["train_items"], fit["positives"]) == (len(train), sum(labels))
        p = [i.p_text if task == "text" else i.p_image for i in test]
        assert fit["auc_test"] == pytest.approx(
            roc_auc_score([getattr(i, field) for i in test], p), abs=1e-4
        )
    scores = [i.model_score for i in test]
    assert result["candidates"] == sum(s < 0.25 for s in scores)

    # The dashboards' Spearman rho (summary.py) from these similarities, against scipy directly.
    summary = itr_summary(dataset)
    rho = spearmanr([i.similarity for i in test], [category_score(i.original) for i in test])
    assert summary["spearman_before"]["rho"] == pytest.approx(rho.statistic, abs=1e-4)
    assert summary["spearman_before"]["n"] == len(test)
    assert summary["spearman_after"] == summary["spearman_before"]  # nothing reviewed yet

    # The review queue: the likeliest errors first, then the test items without a score.
    expected = [i.pk for i in sorted(test, key=lambda i: (i.model_score, i.row))]
    expected += [i.pk for i in items if i.split == "test" and i.similarity is None]
    served = []
    client = api_for(reviewers[0])
    url = f"/api/itr/{dataset.pk}/next/"
    while (answer := client.get(url, {"exclude": served})).status_code == 200:
        served.append(answer.json()["id"])
    assert served == expected


def test_signal_replaces_the_earlier_one_and_keeps_listed_items_first(itr_run, lee) -> None:
    dataset, run = itr_run
    api_for(lee).post(
        f"/api/itr/{dataset.pk}/controversial/", {"text": "01->11: 27"}, format="json"
    )
    ItrItem.objects.filter(dataset=dataset, row=30).update(model_score=0.001)  # stale value
    call_command("itr_signal", dataset.name, str(run.pk), stdout=StringIO())
    call_command("itr_signal", str(dataset.pk), str(run.pk), stdout=StringIO())
    assert ItrSignal.objects.filter(dataset=dataset).count() == 1
    assert ItrItem.objects.get(dataset=dataset, row=30).model_score is None
    first = ItrItem.objects.filter(dataset=dataset, split="test").order_by("priority").first()
    assert first.row == 27


def test_command_json(itr_run) -> None:
    dataset, run = itr_run
    out, err = StringIO(), StringIO()
    call_command("itr_signal", dataset.name, str(run.pk), "--json", stdout=out, stderr=err)
    result = json.loads(out.getvalue())
    assert result["run"] == run.pk
    assert set(result["tasks"]) == {"text", "image"}
    assert "candidates" in err.getvalue()
    with pytest.raises(CommandError, match="No ITR dataset"):
        call_command("itr_signal", "nope", str(run.pk))


@pytest.mark.django_db
def test_who_may_compute_and_which_runs(make_itr, lee, reviewers, otto, ada) -> None:
    """Leads and admins only; another dataset's run is 404, a run without embeddings or not
    finished is 409; a train split with one label cannot be fitted."""
    dataset = make_itr(LABELS, split=SPLIT, name="itrsig")
    other = make_itr([(0, 0), (1, 1)], split=1, name="other")
    taxonomy = make_taxonomy("scenes", ["beach", "kitchen"])

    def run(ds, status="succeeded", **kw):
        return ClassificationRun.objects.create(
            dataset=ds, taxonomy=taxonomy, model="sieve-tiny", weights="none", status=status, **kw
        )

    url = f"/api/itr/{dataset.pk}/signal/"
    mine = run(dataset)
    assert api_for(reviewers[0]).post(url, {"run": mine.pk}, format="json").status_code == 403
    assert api_for(otto).post(url, {"run": mine.pk}, format="json").status_code == 404
    lead = api_for(lee)
    assert lead.post(url, {"run": run(other).pk}, format="json").status_code == 404
    assert lead.post(url, {"run": 10**9}, format="json").status_code == 404
    assert lead.post(url, {"run": "1"}, format="json").status_code == 400
    assert lead.post(url, {}, format="json").status_code == 400
    failed = lead.post(url, {"run": run(dataset, "failed").pk}, format="json")
    assert failed.status_code == 409
    assert "failed" in failed.json()["detail"]
    empty = api_for(ada).post(url, {"run": mine.pk}, format="json")
    assert empty.status_code == 409
    assert "no embeddings" in empty.json()["detail"]
    assert not ItrSignal.objects.exists()
    with pytest.raises(CommandError, match="no embeddings"):
        call_command("itr_signal", dataset.name, str(mine.pk))


def test_one_label_in_train_cannot_be_fitted(make_itr, image_root, lee, tiny_checkpoint) -> None:  # noqa: F811
    labels = [(1, row % 2) for row in range(8)]
    dataset = make_itr(labels, split=4, name="oneclass", images=itr_images_for(image_root, 8))
    run = classify(dataset, tiny_checkpoint)
    response = api_for(lee).post(f"/api/itr/{dataset.pk}/signal/", {"run": run.pk}, format="json")
    assert response.status_code == 409
    assert "text task" in response.json()["detail"]
    assert not ItrItem.objects.filter(dataset=dataset, similarity__isnull=False).exists()
    assert Item.objects.filter(dataset=dataset, status="ok").count() == 8


def itr_images_for(root: Path, count: int) -> Path:
    folder = root / "few"
    folder.mkdir()
    for row in range(count):
        (folder / f"T{1000 + row}.jpg").write_bytes(jpeg_bytes(row))
    return folder
