"""The probe on the pages, on the demo: the run page's "Train a probe from verdicts" form (leads
and admins), its refusals on the page, a probe run's progress and figures, a parent's list of
probes, the dashboard's comparison; and in Chromium at phone width, the button queues a probe
that a real worker trains until its figures appear."""

import pytest
from django.contrib.auth.models import User
from django.test import Client
from playwright.sync_api import expect

from classifier.models import ClassificationRun
from tests.conftest import make_user
from tests.probe.test_api import other_run, unjudged_taxonomy

pytestmark = [pytest.mark.django_db, pytest.mark.torch]
PHONE = {"width": 390, "height": 844}
HTMX = {"HTTP_HX_REQUEST": "true"}
FIGURES = {
    "folds": 5, "seed": 0, "progress": {"phase": "done", "done": 1, "total": 1},
    "verdict_items": 160, "examples": {"positive": 152, "not_label": 8}, "judged_items": 159,
    "cross_validated_accuracy": 0.8616, "cross_validated_low": 0.7990,
    "cross_validated_high": 0.9071, "zero_shot_accuracy": 0.8176, "zero_shot_low": 0.7503,
    "zero_shot_high": 0.8699, "probe_only": 9, "zero_shot_only": 2, "mcnemar_p": 0.0654,
    "alpha": 0.6, "fold_alphas": [0.6, 0.5, 0.6, 0.7, 0.6], "l2": 0.01, "rank": 32,
    "active_labels": 10, "trainings": 16,
}  # fmt: skip


def client_for(name: str) -> Client:
    client = Client()
    client.force_login(User.objects.get(username=name))
    return client


def finished_probe(demo, **fields) -> ClassificationRun:
    """A succeeded probe run of the demo run with the figures above (no training)."""
    figures = FIGURES | {"parent": demo.run.pk}
    return other_run(demo, source="probe", parent=demo.run, probe=figures, **fields)


def test_lead_sees_the_form_annotators_do_not(demo_storage) -> None:
    demo = demo_storage
    page = client_for("lead").get(f"/runs/{demo.run.pk}/").content.decode()
    assert 'id="probe-form"' in page
    assert "Train a probe from verdicts" in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert "No probe learned from this run yet." in page
    annotator = client_for("annotator1")
    assert 'id="probe-form"' not in annotator.get(f"/runs/{demo.run.pk}/").content.decode()
    assert annotator.post(f"/runs/{demo.run.pk}/probe/", {"folds": 5}).status_code == 403
    outsider = Client()
    outsider.force_login(make_user("charlie"))
    assert outsider.post(f"/runs/{demo.run.pk}/probe/", {"folds": 5}).status_code == 404
    assert outsider.get(f"/runs/{demo.run.pk}/probe/", **HTMX).status_code == 404
    assert not demo.run.probes.exists()


def test_refusals_show_on_the_run_page(demo_storage) -> None:
    demo = demo_storage
    lead = client_for("lead")
    run = other_run(demo, taxonomy=unjudged_taxonomy())
    response = lead.post(f"/runs/{run.pk}/probe/", {"folds": "5"})
    assert response.status_code == 409
    page = response.content.decode()
    assert 'id="probe-error"' in page
    assert "a probe needs verdicts on at least 20 items of this dataset; there are 0." in page
    response = lead.post(f"/runs/{demo.run.pk}/probe/", {"folds": "many"})
    assert response.status_code == 400
    assert "Folds must be a whole number from 3 to 20." in response.content.decode()
    assert 'value="many"' in response.content.decode()  # the form keeps what was typed
    response = lead.post(f"/runs/{demo.run.pk}/probe/", {"folds": "50"})
    assert response.status_code == 400
    # Imported predictions and probes have no form: a probe learns from a zero-shot run.
    imported = other_run(demo, source="import", model="")
    assert 'id="probe-form"' not in lead.get(f"/runs/{imported.pk}/").content.decode()
    assert lead.post(f"/runs/{imported.pk}/probe/").status_code == 409
    assert not ClassificationRun.objects.filter(source="probe").exists()


def test_the_button_queues_a_probe_whose_page_shows_its_progress(demo_storage) -> None:
    demo = demo_storage
    lead = client_for("lead")
    response = lead.post(f"/runs/{demo.run.pk}/probe/", {"folds": "4"})
    (probe,) = demo.run.probes.all()
    assert response.status_code == 302
    assert response["Location"] == f"/runs/{probe.pk}/"
    assert probe.probe["folds"] == 4
    assert probe.created_by.username == "lead"
    # A second click while it is queued: the same probe, no second one.
    assert lead.post(f"/runs/{demo.run.pk}/probe/")["Location"] == f"/runs/{probe.pk}/"
    assert demo.run.probes.count() == 1
    page = lead.get(f"/runs/{probe.pk}/").content.decode()
    assert f"Probe run #{probe.pk} of run #{demo.run.pk} is queued." in page
    assert 'id="probe-progress" data-phase="queued"' in page
    assert f'hx-get="/runs/{probe.pk}/probe/"' in page  # polled while it trains
    assert 'id="probe-form"' not in page  # no probe of a probe
    probe.probe = probe.probe | {"progress": {"phase": "training", "done": 6, "total": 16}}
    probe.save(update_fields=["probe"])
    card = lead.get(f"/runs/{probe.pk}/probe/", **HTMX)
    assert "Training: 6 of 16 heads" in card.content.decode()
    assert "HX-Refresh" not in card
    parent = lead.get(f"/runs/{demo.run.pk}/").content.decode()
    assert f'<tr data-run="{probe.pk}">' in parent
    assert f'hx-get="/runs/{demo.run.pk}/probe/"' in parent  # its list polls too
    # Once the probe ends, the poll reloads the page (status card, charts, figures).
    probe.status = "succeeded"
    probe.probe = FIGURES | {"parent": demo.run.pk}
    probe.save(update_fields=["status", "probe"])
    assert lead.get(f"/runs/{probe.pk}/probe/", **HTMX)["HX-Refresh"] == "true"
    assert lead.get(f"/runs/{probe.pk}/probe/").status_code == 302  # not htmx: the page


def test_a_probe_page_shows_its_figures_and_the_parent_lists_it(demo_storage) -> None:
    demo = demo_storage
    probe = finished_probe(demo)
    page = client_for("annotator1").get(f"/runs/{probe.pk}/").content.decode()
    assert 'id="probe-compare"' in page
    assert '<span id="probe-verdict-items">160</span> items with verdicts' in page
    assert "152 right labels, 8 wrong ones" in page
    assert "5 (seed 0)" in page
    assert "0.60" in page  # alpha
    assert "86.2%" in page  # the probe's cross-validated accuracy
    assert "79.9–90.7%" in page
    assert "81.8%" in page  # the parent's zero-shot accuracy on the same items
    assert "75.0–87.0%" in page
    assert "McNemar p = 0.065. No clear difference" in page
    assert f'href="/runs/{demo.run.pk}/" id="probe-parent"' in page
    assert "hx-trigger" not in page.split('id="run-probe"')[1].split(">")[0]  # not polled
    parent = client_for("annotator1").get(f"/runs/{demo.run.pk}/").content.decode()
    row = parent.split(f'<tr data-run="{probe.pk}">')[1].split("</tr>")[0]
    assert "86.2%" in row
    assert "81.8%" in row
    assert "0.065" in row
    assert 'id="probe-form"' not in parent  # annotators list probes but do not train them


def test_dashboard_marks_the_probe_and_its_pair_and_escapes_names(demo_storage) -> None:
    demo = demo_storage
    probe = finished_probe(demo, name="<script>alert(1)</script>")
    sample = demo.run.samples.first()
    lead = client_for("lead")
    page = lead.get(f"/samples/{sample.pk}/").content.decode()
    assert f"probe of run {demo.run.pk}</span>" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page
    assert 'data-probe="1"' in page
    assert "probe vs parent" in page
    scores = lead.get(f"/api/samples/{sample.pk}/scores/").json()
    rows = {row["run"]: row for row in scores["rows"]}
    assert rows[probe.pk]["source"] == "probe"
    assert rows[probe.pk]["parent"] == demo.run.pk
    assert rows[demo.run.pk]["parent"] is None
    (pair,) = [p for p in scores["pairs"] if p["probe"]]
    assert {pair["a"], pair["b"]} == {demo.run.pk, probe.pk}


@pytest.mark.browser
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_phone_button_queues_a_probe_and_its_figures_appear(
    demo_storage, start_worker, browser, live_server
) -> None:
    """Transactional (live server, worker), so pytest-django runs it last: its flush empties
    the module's demo."""
    demo = demo_storage
    start_worker("default")
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=username]", "lead")
        page.fill("input[name=password]", "sieve-lead-demo")
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")
        page.goto(f"{live_server.url}/runs/{demo.run.pk}/")
        page.fill("#probe-form input[name=folds]", "3")
        page.click("#probe-form button[type=submit]")
        page.wait_for_url(f"{live_server.url}/runs/*/")
        (probe,) = demo.run.probes.all()
        assert page.url == f"{live_server.url}/runs/{probe.pk}/"
        expect(page.locator("#run-probe")).to_contain_text("Probe learned from verdicts")
        # The worker trains it; the polled card reloads the page with the figures.
        expect(page.locator("#probe-compare")).to_be_visible(timeout=240_000)
        probe.refresh_from_db()
        assert probe.status == "succeeded"
        expect(page.locator("#probe-verdict-items")).to_have_text(str(probe.probe["verdict_items"]))
        expect(page.locator("#probe-compare .probe-accuracy")).to_have_count(2)
        expect(page.locator("#probe-finding")).to_contain_text("McNemar p =")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.click("#probe-parent")
        page.wait_for_url(f"{live_server.url}/runs/{demo.run.pk}/")
        expect(page.locator(f"#probe-list tr[data-run='{probe.pk}']")).to_contain_text("%")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert problems == []
    finally:
        context.close()
