"""A run stores its per-label counts once, when it succeeds (one GROUP BY), so that no request
about a finished run counts its predictions per label again: the dashboard's class table,
the run page's label distribution and `GET /api/runs/{id}/labels/`."""

from collections import Counter

import numpy as np
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from annotate.validation.metrics import run_label_frequency
from classifier.models import ClassificationRun, Prediction
from classifier.scoring import run_label_distribution
from classifier.services import predictions_write, run_finish_if_done, run_import_predictions
from tests.conftest import PASSWORD
from tests.validation.conftest import api_for

pytestmark = pytest.mark.django_db


def counted(run: ClassificationRun) -> dict[str, int]:
    return {
        str(k): v
        for k, v in Counter(
            Prediction.objects.filter(run=run).values_list("label_id", flat=True)
        ).items()
    }


def test_a_run_stores_its_label_counts_when_it_succeeds(dataset, taxonomy, explored) -> None:
    run = ClassificationRun.objects.create(
        dataset=dataset, taxonomy=taxonomy, status="running", item_count=len(explored.items)
    )
    labels = np.array([label.pk for label in explored.labels])
    predictions_write(
        run_id=run.pk, item_ids=np.array([i.pk for i in explored.items]), label_ids=labels,
        top_labels=(np.arange(len(explored.items)) % 3).reshape(-1, 1),
        top_probs=np.full((len(explored.items), 1), 0.5),
    )  # fmt: skip
    assert run_finish_if_done(run_id=run.pk)  # no chunk left: the run succeeds
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert run.label_counts == counted(run)
    assert sum(run.label_counts.values()) == len(explored.items)


def test_imported_predictions_store_their_label_counts(dataset, taxonomy, explored) -> None:
    rows = [(item.external_id, "/s/beach1" if n % 4 else "forest", "0.7")
            for n, item in enumerate(explored.items)]  # fmt: skip
    run, _ = run_import_predictions(dataset=dataset, taxonomy=taxonomy, rows=rows)
    run.refresh_from_db()
    assert run.label_counts == counted(run)
    assert sorted(run.label_counts.values()) == [10, 30]


def prediction_group_bys(queries) -> list[str]:
    return [
        q["sql"] for q in queries if "classifier_prediction" in q["sql"] and "GROUP BY" in q["sql"]
    ]


def test_no_request_counts_a_finished_runs_predictions_per_label(explored, lee) -> None:
    run = explored.run
    ClassificationRun.objects.filter(pk=run.pk).update(label_counts=counted(run))
    run.refresh_from_db()
    client = Client()
    assert client.login(username="lee", password=PASSWORD)
    api = api_for(lee)
    with CaptureQueriesContext(connection) as ctx:
        assert api.get(f"/api/samples/{explored.sample.pk}/classes/").status_code == 200
        assert client.get(f"/runs/{run.pk}/").status_code == 200
        labels = api.get(f"/api/runs/{run.pk}/labels/?limit=3").json()["rows"]
        frequency = run_label_frequency(run=run, label_ids=[explored.labels[0].pk])
        distribution = run_label_distribution(run=run, limit=20)
    assert prediction_group_bys(ctx.captured_queries) == []
    # The same figures as counting.
    ClassificationRun.objects.filter(pk=run.pk).update(label_counts={})
    run.refresh_from_db()
    with CaptureQueriesContext(connection) as ctx:
        assert run_label_distribution(run=run, limit=20) == distribution
    assert prediction_group_bys(ctx.captured_queries)  # without stored counts: counted
    assert [row["count"] for row in labels] == [row["count"] for row in distribution[:3]]
    assert frequency == {explored.labels[0].pk: int(counted(run)[str(explored.labels[0].pk)])}
