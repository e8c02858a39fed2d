"""The ITR dashboard page: who sees what (reviewers see progress only, leads the results), the
figures as itr_summary gives them, the chart's data, the model-signal form and the list upload
with its per-line errors."""

import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from annotate.datasets.models import Dataset
from annotate.itr.models import ItrItem
from annotate.itr.services import review_record
from annotate.itr.summary import itr_summary
from classifier.models import ClassificationRun
from tests.classifier.conftest import make_taxonomy
from tests.itr.conftest import login

# Rows 0-1 train, 2-7 test.
LABELS = [(0, 0), (1, 1), (0, 0), (0, 1), (1, 0), (1, 1), (0, 0), (1, 1)]
HTMX = {"HX-Request": "true"}
RESULTS = ("itr-changes", "itr-alpha", "itr-distribution", "itr-signal", "itr-exports", "itr-list")


@pytest.fixture
def small(make_itr, reviewers):
    dataset = make_itr(LABELS, split=2, name="dash")
    items = {i.row: i for i in ItrItem.objects.filter(dataset=dataset)}
    for reviewer in reviewers[:3]:
        review_record(
            item=items[2], reviewer=reviewer, text_is_represented=1, image_adds=0, reason="text"
        )
        review_record(item=items[3], reviewer=reviewer, text_is_represented=0, image_adds=1)
    return dataset


@pytest.mark.parametrize(
    ("user", "code"), [("lee", 200), ("ada", 200), ("rev1", 200), ("otto", 404)]
)
def test_who_may_open_it(client: Client, small, ada, otto, user, code) -> None:
    assert login(client, user).get(f"/itr/{small.pk}/").status_code == code


def test_reviewers_see_progress_only(client: Client, small) -> None:
    page = login(client, "rev1").get(f"/itr/{small.pk}/").content.decode()
    assert 'id="itr-progress-card"' in page
    assert "Your reviews</dt><dd>2</dd>" in page
    for section in RESULTS:
        assert f'id="{section}"' not in page
    assert "/adjudicate/" not in page
    assert "chart-4.6.1" not in page


def test_other_kinds_of_dataset_answer_404(client: Client, small, dataset) -> None:
    assert login(client, "lee").get(f"/itr/{dataset.pk}/").status_code == 404
    assert Dataset.objects.get(pk=dataset.pk).kind == "images"


def test_lead_sees_the_summary(client: Client, small) -> None:
    page = login(client, "lee").get(f"/itr/{small.pk}/").content.decode()
    for section in RESULTS:
        assert f'id="{section}"' in page
    summary = itr_summary(small)
    assert summary["changed"] == 1
    assert "<dt>Changed</dt><dd>1</dd>" in page
    assert "<dt>Text only</dt><dd>1</dd>" in page
    chart = json.loads(re.search(r'id="itr-chart-data"[^>]*>(.*?)</script>', page).group(1))
    codes = ["00", "01", "10", "11"]
    assert chart["before"] == [summary["distribution"]["before"][c] for c in codes]
    assert chart["after"] == [summary["distribution"]["after"][c] for c in codes]
    assert chart["before"] == [2, 1, 1, 2]
    assert chart["after"] == [1, 1, 2, 2]
    assert page.count("/export/?set=") == 4
    assert 'id="reviewer-agreement"' in page
    assert 'id="spearman-missing"' in page  # no model signal yet
    assert 'id="signal-form"' not in page  # and no run to compute it from


def test_signal_form(client: Client, small, make_itr, reviewers) -> None:
    taxonomy = make_taxonomy("scenes", ["beach", "kitchen"])
    run = ClassificationRun.objects.create(
        dataset=small, taxonomy=taxonomy, model="sieve-tiny", weights="none", status="succeeded"
    )
    other = make_itr([(0, 0), (1, 1)], split=1, name="other")
    foreign = ClassificationRun.objects.create(
        dataset=other, taxonomy=taxonomy, model="sieve-tiny", weights="none", status="succeeded"
    )
    url = f"/itr/{small.pk}/signal/"
    login(client, "lee")
    page = client.get(f"/itr/{small.pk}/").content.decode()
    assert f'<option value="{run.pk}"' in page
    assert f'<option value="{foreign.pk}"' not in page
    refused = client.post(url, {"run": run.pk}, headers=HTMX).content.decode()
    assert refused.startswith('<section class="card" id="itr-signal">')
    assert "left no embeddings" in refused
    assert (
        "Choose a succeeded" in client.post(url, {"run": foreign.pk}, headers=HTMX).content.decode()
    )
    assert "Choose a succeeded" in client.post(url, {"run": "x"}, headers=HTMX).content.decode()
    plain = client.post(url, {"run": run.pk})
    assert plain.status_code == 302
    assert "left no embeddings" in client.get(plain["Location"]).content.decode()
    assert login(client, "rev1").post(url, {"run": run.pk}).status_code == 403


def test_list_upload(client: Client, small) -> None:
    url = f"/itr/{small.pk}/controversial/"
    login(client, "lee")
    bad = client.post(url, {"text": "00->10: 2, 77\n<b>bad</b>"}, headers=HTMX).content.decode()
    assert bad.startswith('<section class="card" id="itr-list">')
    assert "<li>line 1: row 77 is not in dataset dash</li>" in bad
    assert "2 problem(s) in the list" in bad
    assert "<b>bad" not in bad
    assert "&lt;b&gt;bad&lt;/b&gt;</textarea>" in bad  # the refused lines stay, to be mended
    assert not ItrItem.objects.filter(dataset=small, listed=True).exists()
    assert "the list is empty" in client.post(url, {"text": " "}, headers=HTMX).content.decode()
    upload = SimpleUploadedFile("list.txt", b"00->10: 2\n01->11: 3\n")
    done = client.post(url, {"file": upload}, headers=HTMX)
    assert done["HX-Refresh"] == "true"
    assert list(
        ItrItem.objects.filter(dataset=small, listed=True).values_list("row", flat=True)
    ) == [
        2,
        3,
    ]
    page = client.get(f"/itr/{small.pk}/").content.decode()
    assert "List imported: 2 items (2 text only, 0 image only, 0 both)." in page
    assert "Imported list: 2 items" in page
    plain = client.post(url, {"text": "00->11: 99"})
    assert plain.status_code == 302
    assert "row 99 is not in dataset dash" in client.get(plain["Location"]).content.decode()
    assert login(client, "rev1").post(url, {"text": "00->10: 2"}).status_code == 403
