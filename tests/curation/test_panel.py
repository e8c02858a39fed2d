"""The dashboard's "What you get" panel and its export form through Django's test client: the
panel sits outside the poller's region with the headline's θ; its fragment shows what
`selection_compute` computes; refusals come back in the fragment with their status; the export
form queues one export (a repeat answers it again) and its status fragment polls, then links
the downloads. Not transactional: no task is sent (test_jobs.py has the worker)."""

import re

import pytest
from django.test import Client

from annotate.taxonomies.models import Label
from annotate.validation.curation import parse_rule, selection_compute
from annotate.validation.models import CuratedExport, Sample
from classifier.models import DuplicateScan
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


def client_for(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


def fragment(client: Client, sample: Sample, query: str):
    return client.get(f"/samples/{sample.pk}/selection/?{query}", headers=HTMX)


def test_dashboard_holds_the_panel_outside_the_live_region(published, lee) -> None:
    page = client_for("lee").get(f"/samples/{published.sample.pk}/?theta=0.6").content.decode()
    panel = page.index('id="dash-selection"')
    live = page.index('id="dash-live"')
    assert panel < live
    assert page.count("</section>", panel, live) >= 1  # the panel closes before the region
    assert 'id="selection-theta"' in page
    slider = re.search(r'<input type="range" id="selection-theta"[^>]*>', page).group(0)
    assert 'value="0.6"' in slider
    assert 'step="0.05"' in slider
    assert 'hx-trigger="load, input delay:250ms, selection-refresh"' in page
    assert "js/selection.js" in page
    assert 'id="export-form"' in page
    assert "csrfmiddlewaretoken" in page


def test_a_targeted_sample_says_why_there_is_no_panel(small, lee) -> None:
    Sample.objects.filter(pk=small.sample.pk).update(strategy=Sample.Strategy.SUSPECTS)
    page = client_for("lee").get(f"/samples/{small.sample.pk}/").content.decode()
    assert 'id="selection-targeted"' in page
    assert 'id="selection-form"' not in page
    assert 'id="export-form"' not in page
    response = fragment(client_for("lee"), small.sample, "mode=threshold&threshold=0.5")
    assert response.status_code == 409
    assert b"targeted" in response.content


def test_the_fragment_shows_the_selection(published, lee) -> None:
    client = client_for("lee")
    response = fragment(client, published.sample, "mode=threshold&threshold=0.6&target_precision=")
    assert response.status_code == 200
    assert response["Vary"].count("HX-Request") == 1
    html = response.content.decode()
    selection = selection_compute(sample=published.sample, rule=parse_rule(threshold=0.6))
    assert f'<strong data-field="selected">{selection.selected}</strong>' in html
    assert f"{100 * selection.precision:.1f} %" in html
    assert f"{100 * selection.precision_low:.1f}–{100 * selection.precision_high:.1f} %" in html
    assert html.count('<tr data-label="') == len(selection.per_label)
    # A target precision: per-label thresholds, labels that never reach it left out.
    target = fragment(client, published.sample, "mode=target&threshold=0.6&target_precision=0.5")
    by_target = selection_compute(sample=published.sample, rule=parse_rule(target_precision=0.5))
    html = target.content.decode()
    for row in by_target.per_label:
        cell = re.search(
            rf'<tr data-label="{re.escape(row.key)}" data-status="{row.status}">\s*<td>.*?</td>\s*'
            r'<td data-field="threshold">([^<]*)</td>',
            html,
        )
        assert cell is not None, row.key
        assert cell.group(1) == ("—" if row.threshold is None else f"{row.threshold:g}")
    if any(row.status == "below_target" for row in by_target.per_label):
        assert 'id="selection-left-out"' in html
        assert "below target: left out" in html
    # Unvalidated items, counted, and included on request.
    low = fragment(client, published.sample, "mode=threshold&threshold=0.5").content.decode()
    assert "Left out: <strong>" in low
    included = fragment(
        client, published.sample, "mode=threshold&threshold=0.5&include_unvalidated=true"
    )
    assert "Included: <strong>" in included.content.decode()
    # Above every miss each kept label is all hits: the page says the interval is too narrow.
    high = fragment(client, published.sample, "mode=threshold&threshold=0.95").content.decode()
    assert 'id="selection-caveat"' in high
    # At θ = 0.6 every label keeps some misses: no such caveat.
    assert 'id="selection-caveat"' not in response.content.decode()


def test_without_htmx_the_selection_is_a_page(small, lee) -> None:
    response = client_for("lee").get(
        f"/samples/{small.sample.pk}/selection/?mode=target&target_precision=0.8"
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" in html
    assert 'id="selection-mode-target" checked' in html
    assert 'value="0.8"' in html


def test_refusals_come_back_in_the_fragment(small, lee, ann, otto) -> None:
    client = client_for("lee")
    for query in ("mode=threshold&threshold=abc", "mode=threshold", "mode=sideways&threshold=0.5",
                  "mode=target&target_precision=1.5", "mode=threshold&threshold=nan"):  # fmt: skip
        response = fragment(client, small.sample, query)
        assert response.status_code == 400, query
        assert b'id="selection-error"' in response.content
    assert fragment(client_for("ann"), small.sample, "threshold=0.5").status_code == 403
    assert fragment(client_for("otto"), small.sample, "threshold=0.5").status_code == 404
    assert Client().get(f"/samples/{small.sample.pk}/selection/").status_code == 302


def test_label_names_are_escaped(small, lee) -> None:
    Label.objects.filter(pk=small.labels[0].pk).update(name="<img src=x onerror=alert(1)>")
    html = fragment(client_for("lee"), small.sample, "mode=threshold&threshold=0.5").content
    assert b"<img src=x" not in html
    assert b"&lt;img src=x" in html


def post_export(client: Client, sample: Sample, htmx: bool = True, **fields):
    data = {"mode": "threshold", "threshold": "0.6", "target_precision": "0.9", "format": "csv",
            "exclude_suspects": "0"} | fields  # fmt: skip
    return client.post(f"/samples/{sample.pk}/exports/", data, headers=HTMX if htmx else {})


def test_export_form_queues_one_export_and_polls_it(small, lee, ada) -> None:
    client = client_for("lee")
    refused = post_export(client, small.sample, exclude_duplicates="true")
    assert refused.status_code == 409  # no near-duplicate scan of the run yet
    assert b"duplicates" in refused.content
    DuplicateScan.objects.create(run=small.run, min_similarity=0.97, status="succeeded")
    response = post_export(client, small.sample, format="jsonl", exclude_duplicates="true")
    assert response.status_code == 200
    (export,) = CuratedExport.objects.all()
    assert export.format == "jsonl"
    assert export.rule == {"threshold": 0.6, "include_unvalidated": False,
                           "exclude_duplicates": True, "exclude_suspects": 0}  # fmt: skip
    assert export.created_by == lee
    html = response.content.decode()
    assert f'hx-get="/exports/{export.pk}/"' in html
    assert 'hx-trigger="every 1s"' in html
    assert 'id="export-progress"' in html
    again = post_export(client, small.sample, format="jsonl", exclude_duplicates="on")
    assert again.status_code == 200
    assert CuratedExport.objects.count() == 1
    # Without htmx: to the export's own page.
    plain = post_export(client, small.sample, htmx=False, mode="target", target_precision="0.8")
    assert plain.status_code == 302
    second = CuratedExport.objects.exclude(pk=export.pk).get()
    assert second.rule["target_precision"] == 0.8
    assert plain["Location"] == f"/exports/{second.pk}/"
    page = client.get(plain["Location"])
    assert page.status_code == 200
    assert b"<html" in page.content
    # Running: the bar; done: the links, no more polling; failed: why (admins) or that it did.
    CuratedExport.objects.filter(pk=export.pk).update(status="running", done=3, total=8)
    running = client.get(f"/exports/{export.pk}/", headers=HTMX).content.decode()
    assert 'value="3"' in running
    assert 'max="8"' in running
    CuratedExport.objects.filter(pk=export.pk).update(
        status="succeeded", done=8, file=f"exports/{export.pk}/curated.jsonl"
    )
    done = client.get(f"/exports/{export.pk}/", headers=HTMX).content.decode()
    assert "hx-trigger" not in done
    assert f'href="/api/exports/{export.pk}/file/"' in done
    assert f'href="/api/exports/{export.pk}/manifest/"' in done
    CuratedExport.objects.filter(pk=export.pk).update(status="failed", error="OSError: /srv full")
    failed = client.get(f"/exports/{export.pk}/", headers=HTMX).content.decode()
    assert "The export failed" in failed
    assert "/srv" not in failed
    admin_view = client_for("ada").get(f"/exports/{export.pk}/", headers=HTMX).content.decode()
    assert "OSError: /srv full" in admin_view


def test_export_form_refusals(small, lee, ann, otto) -> None:
    client = client_for("lee")
    for fields in ({"format": "xlsx"}, {"exclude_suspects": "-1"}, {"exclude_suspects": "two"},
                   {"threshold": ""}, {"mode": "target", "target_precision": "2"}):  # fmt: skip
        response = post_export(client, small.sample, **fields)
        assert response.status_code == 400, fields
        assert b'id="export-error"' in response.content
    assert post_export(client_for("ann"), small.sample).status_code == 403
    assert post_export(client_for("otto"), small.sample).status_code == 404
    assert client.get(f"/samples/{small.sample.pk}/exports/").status_code == 405
    Sample.objects.filter(pk=small.sample.pk).update(strategy=Sample.Strategy.SUSPECTS)
    refused = post_export(client, small.sample)
    assert refused.status_code == 409
    assert b"targeted" in refused.content
    assert not CuratedExport.objects.exists()
    export = CuratedExport.objects.create(sample=small.sample, rule={"threshold": 0.6})
    assert client_for("ann").get(f"/exports/{export.pk}/").status_code == 403
    assert client_for("otto").get(f"/exports/{export.pk}/").status_code == 404
