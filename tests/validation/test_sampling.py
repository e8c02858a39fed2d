import json
import subprocess
import sys
from collections import Counter

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotate.validation.models import Sample, SampleItem
from annotate.validation.sampling import SampleError, sample_draw
from classifier.models import ClassificationRun
from tests.conftest import ROOT, child_env
from tests.validation.conftest import api_for


def drawn(sample: Sample) -> list[int]:
    return list(sample.items.order_by("position").values_list("prediction_id", flat=True))


def label_counts(sample: Sample) -> Counter:
    return Counter(sample.items.values_list("prediction__label__key", flat=True))


def test_top_labels_by_frequency_k_each(run, lee) -> None:
    sample = sample_draw(run=run, classes=10, per_class=100, seed=7, created_by=lee)
    counts = label_counts(sample)
    assert counts == {f"/l/label{i:02d}": 100 for i in range(10)}
    assert sample.items.count() == 1000
    assert sorted(sample.items.values_list("position", flat=True)) == list(range(1000))
    # Without replacement: every prediction at most once.
    assert len(set(drawn(sample))) == 1000


def test_ties_broken_by_label_key_and_small_labels_taken_whole(run) -> None:
    sample = sample_draw(run=run, classes=4, per_class=125, seed=1)
    counts = label_counts(sample)
    # label03 and label04 both have 120 predictions: the key decides.
    assert set(counts) == {"/l/label00", "/l/label01", "/l/label02", "/l/label03"}
    assert counts["/l/label03"] == 120  # fewer than K: all of them


def test_same_seed_same_sample_other_seed_other_sample(run) -> None:
    a = sample_draw(run=run, seed=42)
    b = sample_draw(run=run, seed=42)
    c = sample_draw(run=run, seed=43)
    assert drawn(a) == drawn(b)
    assert list(a.items.order_by("position").values_list("wanted_verdicts", flat=True)) == list(
        b.items.order_by("position").values_list("wanted_verdicts", flat=True)
    )
    assert drawn(a) != drawn(c)
    # Small draws fetch only the drawn ids (row_number() path): reproducible as well.
    small = [drawn(sample_draw(run=run, seed=42, per_class=10)) for _ in range(2)]
    assert small[0] == small[1]
    assert len(set(small[0])) == 100


def test_row_number_path_matches_the_id_list(run) -> None:
    from annotate.validation.sampling import _ids_at, _pool

    pool = _pool(run=run, min_probability=0, exclude_previous=False)
    label = run.predictions.values_list("label_id", flat=True).order_by("id").first()
    ordered = list(pool.filter(label_id=label).order_by("id").values_list("id", flat=True))
    positions = [17, 3, 149, 0, 88]
    assert _ids_at(pool, label, len(ordered), positions) == [ordered[p] for p in positions]


def test_redundancy_and_overlap(run) -> None:
    single = sample_draw(run=run, seed=3, redundancy=1, overlap=0.1)
    assert Counter(single.items.values_list("wanted_verdicts", flat=True)) == {1: 900, 2: 100}
    triple = sample_draw(run=run, seed=3, redundancy=3, overlap=0.1)
    assert set(triple.items.values_list("wanted_verdicts", flat=True)) == {3}
    none = sample_draw(run=run, seed=3, overlap=0)
    assert set(none.items.values_list("wanted_verdicts", flat=True)) == {1}


def test_min_probability_and_exclude_previous(run) -> None:
    high = sample_draw(run=run, seed=5, classes=3, per_class=20, min_probability=0.5)
    probs = high.items.values_list("prediction__probability", flat=True)
    assert min(probs) >= 0.5
    first = sample_draw(run=run, seed=5, classes=10, per_class=50)
    second = sample_draw(run=run, seed=5, classes=10, per_class=50, exclude_previous=True)
    items = set(SampleItem.objects.filter(sample=first).values_list("prediction__item", flat=True))
    again = set(SampleItem.objects.filter(sample=second).values_list("prediction__item", flat=True))
    assert len(again) == 500
    assert not items & again


def test_bad_options_and_unfinished_runs(run) -> None:
    with pytest.raises(SampleError):
        sample_draw(run=run, classes=0)
    with pytest.raises(SampleError):
        sample_draw(run=run, overlap=1.5)
    run.status = ClassificationRun.Status.RUNNING
    run.save()
    with pytest.raises(SampleError, match="finished"):
        sample_draw(run=run)
    assert not Sample.objects.exists()


def test_api_draw_permissions(run, lee, ann, otto, ada) -> None:
    url = f"/api/runs/{run.pk}/samples/"
    body = {"classes": 3, "per_class": 10, "seed": 9, "redundancy": 2}
    assert api_for(otto).post(url, body, format="json").status_code == 404
    assert api_for(ann).post(url, body, format="json").status_code == 403
    response = api_for(lee).post(url, body, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["seed"] == 9
    assert data["redundancy"] == 2
    assert data["created_by"] == "lee"
    assert data["progress"]["items"] == 30
    assert data["progress"]["wanted"] == 60
    assert api_for(ada).post(url, body, format="json").status_code == 201
    bad = api_for(lee).post(url, {"classes": -1, "per_class": "x"}, format="json")
    assert bad.status_code == 400
    assert {"classes", "per_class"} <= set(bad.json())
    assert api_for(ann).get(f"/api/samples/{data['id']}/").json()["id"] == data["id"]
    assert api_for(otto).get(f"/api/samples/{data['id']}/").status_code == 404


def test_items_show_verdict_counts_to_leads_only_and_blind_hides_probability(run, lee, ann) -> None:
    sample = sample_draw(run=run, classes=2, per_class=5, seed=1, blind=True)
    url = f"/api/samples/{sample.pk}/items/"
    lead_rows = api_for(lee).get(url).json()["results"]
    ann_rows = api_for(ann).get(url).json()["results"]
    assert len(lead_rows) == len(ann_rows) == 10
    assert {"id", "external_id", "label", "probability", "verdicts"} <= set(lead_rows[0])
    assert lead_rows[0]["probability"] is not None
    assert "verdicts" not in ann_rows[0]
    assert ann_rows[0]["probability"] is None
    next_item = api_for(ann).get(f"/api/samples/{sample.pk}/next/").json()
    assert next_item["probability"] is None


def test_draw_sample_command(run) -> None:
    call_command("draw_sample", str(run.pk), "--classes", "2", "--per-class", "3", "--seed", "4")
    sample = Sample.objects.get()
    assert sample.items.count() == 6
    assert sample.seed == 4


@pytest.mark.django_db(transaction=True)
def test_draw_sample_command_json_in_a_child_process(run) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "draw_sample", str(run.pk), "--classes", "3",
         "--per-class", "7", "--seed", "11", "--redundancy", "2", "--overlap", "0", "--json"],
        cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)  # the whole of stdout: one JSON document
    assert f"sample {data['id']}: 21 items" in result.stderr
    assert data["progress"]["items"] == 21
    assert data["progress"]["wanted"] == 42
    assert data["seed"] == 11
    bad = subprocess.run(
        [sys.executable, "manage.py", "draw_sample", "999999"],
        cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode != 0
    assert "999999" in bad.stderr


def test_sample_lists_use_a_constant_number_of_queries(run, lee) -> None:
    api = api_for(lee)
    sample_draw(run=run, classes=2, per_class=3, seed=1, created_by=lee)
    counts = []
    for extra in (0, 3):
        for seed in range(extra):
            sample_draw(run=run, classes=2, per_class=3, seed=10 + seed, created_by=lee)
        with CaptureQueriesContext(connection) as ctx:
            page = api.get(f"/api/runs/{run.pk}/samples/").json()
        counts.append(len(ctx.captured_queries))
        listed = page["results"]
        assert page["count"] == len(listed) == 1 + extra
        assert all(s["progress"]["items"] == 6 for s in listed)
    assert counts[0] == counts[1]  # progress of all samples in one grouped query
