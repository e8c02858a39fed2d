"""`train_probe` on the demo: unknown runs and refusals are clear errors, a plain call queues,
`--sync --json` trains here and prints one JSON document with the figures, and `--wait`
follows a real worker's training to the end."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from classifier.models import ClassificationRun, Prediction
from tests.probe.test_api import other_run, unjudged_taxonomy

pytestmark = [pytest.mark.django_db, pytest.mark.torch]


def train_probe(*args: object) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("train_probe", *[str(a) for a in args], stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_unknown_run_and_refusals_are_command_errors(demo_storage) -> None:
    demo = demo_storage
    with pytest.raises(CommandError, match="No run 999999"):
        train_probe(999999)
    imported = other_run(demo, source=ClassificationRun.Source.IMPORT, model="")
    with pytest.raises(CommandError, match="imported predictions"):
        train_probe(imported.pk)
    with pytest.raises(CommandError, match="at least 20 items"):
        train_probe(other_run(demo, taxonomy=unjudged_taxonomy()).pk)
    with pytest.raises(CommandError, match="folds must be a whole number from 3 to 20"):
        train_probe(demo.run.pk, "--folds", 2)
    assert not ClassificationRun.objects.filter(source="probe").exists()


def test_without_wait_it_queues_and_says_so(demo_storage) -> None:
    demo = demo_storage
    out, err = train_probe(demo.run.pk, "--folds", 3)
    (probe,) = demo.run.probes.all()
    assert probe.status == "queued"
    assert probe.probe["folds"] == 3
    assert f"Probe run {probe.pk} of run {demo.run.pk} queued" in err
    assert f"/runs/{probe.pk}/" in out
    _, err = train_probe(demo.run.pk)  # a second call finds the pending one
    assert f"Probe run {probe.pk} of run {demo.run.pk} is already queued" in err
    assert demo.run.probes.count() == 1


def test_sync_json_prints_one_document_with_the_figures(demo_storage) -> None:
    demo = demo_storage
    out, err = train_probe(demo.run.pk, "--sync", "--json")
    body = json.loads(out)  # exactly one document: anything else on stdout fails here
    assert body["source"] == "probe"
    assert body["parent"] == demo.run.pk
    assert body["status"] == "succeeded", body["error"]
    figures = body["probe"]
    assert figures["parent"] == demo.run.pk
    assert figures["progress"]["phase"] == "done"
    assert figures["folds"] == 5
    assert figures["verdict_items"] >= 20
    assert figures["examples"]["positive"] + figures["examples"]["not_label"] >= 20
    assert 0 < figures["judged_items"] <= figures["verdict_items"]
    for prefix in ("cross_validated", "zero_shot"):
        low, value, high = (figures[f"{prefix}_{k}"] for k in ("low", "accuracy", "high"))
        assert 0 <= low <= value <= high <= 1
    assert 0 <= figures["mcnemar_p"] <= 1
    assert 0 <= figures["alpha"] <= 1
    assert len(figures["fold_alphas"]) == 5
    assert Prediction.objects.filter(run_id=body["id"]).count() == demo.run.item_count
    # People's lines went to stderr: the summary with both accuracies and their intervals.
    assert "cross-validated accuracy" in err
    assert "zero-shot" in err
    assert "McNemar p =" in err


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_wait_follows_a_real_worker_to_the_figures(demo_storage, start_worker) -> None:
    """Transactional (the worker must see the queued run), so pytest-django runs it after the
    module's other tests: its flush empties the demo."""
    demo = demo_storage
    start_worker("default")
    out, err = train_probe(demo.run.pk, "--wait", "--folds", 3)
    (probe,) = demo.run.probes.all()
    assert probe.status == "succeeded", probe.error
    assert probe.probe["folds"] == 3
    assert f"probe run {probe.pk}" in err  # the progress bar
    assert f"Probe run {probe.pk} of run {demo.run.pk} succeeded" in out
    assert "cross-validated accuracy" in out
    assert f"{probe.probe['verdict_items']} items with verdicts" in out
