"""The dashboard in plain language: the precision/coverage headline checked against numbers
worked out by hand, the links from its numbers to the run explorer, and readable timestamps.
lee leads the dataset, ann annotates it."""

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from scipy.stats import binomtest

from annotate.validation.dashboard import headline
from annotate.validation.metrics import wilson
from tests.conftest import PASSWORD, login
from tests.dashboards.conftest import add_verdicts


def lead_client(client: Client) -> Client:
    assert client.login(username="lee", password=PASSWORD)
    return client


def page_of(client: Client, sample, query: str = "") -> str:
    response = lead_client(client).get(f"/samples/{sample.pk}/{query}")
    assert response.status_code == 200
    return response.content.decode()


def hrefs(html: str, pattern: str) -> list[str]:
    pattern = pattern.replace("&", "&amp;")
    return [h.replace("&amp;", "&") for h in re.findall(rf'href="({pattern}[^"]*)"', html)]


@pytest.mark.django_db
def test_headline_at_06_matches_the_hand_computed_numbers(client: Client, published) -> None:
    """The published sample at θ = 0.6: 507 judged items kept, 270 right, so precision
    270/507 = 53.25 %; the run's 1,300 items are the 1,000 sampled ones (507 with p ≥ 0.6)
    and 300 at p = 0.5, so coverage is 507/1,300 = 39 %."""
    html = page_of(client, published.sample, "?theta=0.6")
    ci = binomtest(270, 507).proportion_ci(method="wilson")  # an independent Wilson interval
    assert (round(ci.low * 100), round(ci.high * 100)) == (49, 58)
    sentence = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html.split('data-field="headline">')[1]))
    assert sentence.strip().startswith(
        "At θ = 0.6 you keep 39 % of the run's items (507 of 1300), and about 53 % (49–58 %) "
        "of what you keep is right."
    )
    assert "measured on the 507 judged sample items with p ≥ 0.6" in html
    # The same numbers feed the chart (fractions) and the table's Wilson column.
    data = re.search(r'<script id="dash-data" type="application/json">(.*?)</script>', html, re.S)
    assert data is not None
    row = next(r for r in json.loads(data.group(1))["headline"] if r["threshold"] == 0.6)
    assert row["precision"] == pytest.approx(270 / 507)
    assert row["precision_low"] == pytest.approx(ci.low)
    assert row["precision_high"] == pytest.approx(ci.high)
    assert row["coverage"] == pytest.approx(507 / 1300)
    assert row["kept"] == 507
    assert f"{ci.low:.3f} – {ci.high:.3f}" in html


def test_headline_picks_the_best_threshold_unless_told() -> None:
    thresholds = {
        "best_threshold": 0.5,
        "rows": [
            {"threshold": t, "classified": c, "precision": h / c if c else None}
            | dict(zip(("precision_low", "precision_high"), wilson(h, c), strict=True))
            for t, h, c in ((0.0, 6, 10), (0.5, 4, 5), (1.0, 0, 0))
        ],
    }
    coverage = [{"classified": n} for n in (40, 10, 0)]
    best = headline(thresholds=thresholds, coverage=coverage, theta=None)
    assert best["chosen"]["threshold"] == 0.5
    assert best["chosen"]["coverage_percent"] == 25  # 10 of 40
    assert best["chosen"]["precision_percent"] == 80  # 4 of 5
    assert best["total"] == 40
    near = headline(thresholds=thresholds, coverage=coverage, theta=0.9)
    assert near["chosen"]["threshold"] == 1.0
    assert near["chosen"]["precision"] is None  # nothing judged kept: no precision, no interval
    assert near["chosen"]["precision_low"] is None


@pytest.mark.django_db
def test_bad_theta_is_a_400(client: Client, small) -> None:
    lead_client(client)
    for bad in ("x", "1.5", "-0.1", "nan"):
        assert client.get(f"/samples/{small.sample.pk}/?theta={bad}").status_code == 400, bad
    assert client.get(f"/samples/{small.sample.pk}/dashboard/poll/?theta=x").status_code == 400


@pytest.mark.django_db
def test_no_verdicts_yet_says_so(client: Client, small) -> None:
    html = page_of(client, small.sample, "?theta=0.5")
    assert "How much of that is right shows once annotators have judged" in html
    # 8 of the run's 12 items have p ≥ 0.5.
    assert "you keep <strong>67 %</strong> of the run's items (8 of 12)" in html


@pytest.mark.django_db
def test_every_class_and_threshold_row_links_into_the_explorer(client: Client, published) -> None:
    html = page_of(client, published.sample)
    run, sample = published.run.pk, published.sample.pk
    class_links = hrefs(html, f"/runs/{run}/items/\\?sample={sample}&label=")
    keys = [parse_qs(urlsplit(h).query)["label"][0] for h in class_links]
    assert keys == [f"/l/label{i:02d}" for i in range(10)]  # every class row, table order
    assert f"/runs/{run}/items/?sample={sample}&label=/l/label00" in class_links
    threshold_links = hrefs(html, f"/runs/{run}/items/\\?sample={sample}&min_probability=")
    thetas = [parse_qs(urlsplit(h).query)["min_probability"][0] for h in threshold_links]
    assert thetas == [str(t / 10) for t in range(11)]
    assert f'href="/runs/{run}/items/?sample={sample}&amp;verdict=disputed"' in html
    assert f'href="/samples/{sample}/disagreements/"' in html
    assert f'href="/samples/{sample}/annotators/"' in html
    # What each column means, next to the table: hit rate is not accuracy.
    assert "hits kept ÷ all hits" in html
    assert "Not accuracy." in html
    assert "hits ÷ classified: the share of what you keep that is right" in html


@pytest.mark.django_db
def test_timestamps_are_human(client: Client, small, ann) -> None:
    add_verdicts([(small.sample_items[0], ann, "hit")])
    html = page_of(client, small.sample)
    stamp = small.sample.created.strftime("%-d %b %Y, %H:%M")
    assert f"{stamp} UTC (0" in html  # "25 Nov 2026, 14:03 UTC (0 minutes ago)"
    assert re.search(r'<time datetime="[^"]+" title="[^"]+ UTC">0\xa0minutes ago</time>', html)
    run_page = client.get(f"/runs/{small.run.pk}/").content.decode()
    assert f'Created <time datetime="{small.run.created.isoformat()}"' in run_page
    assert f'href="/runs/{small.run.pk}/items/"' in run_page  # Explore items


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_class_row_opens_the_explorer_filtered_to_that_label(page, live_server, published):
    login(page, live_server, "lee")
    page.goto(f"{live_server.url}/samples/{published.sample.pk}/")
    page.wait_for_function("() => document.body.dataset.chartsVersion")  # charts drawn
    # The headline chart draws precision with its error bars, and coverage.
    datasets = page.evaluate(
        "Chart.getChart('chart-headline').data.datasets.map(d => [d.data.length, !!d.errorBars])"
    )
    assert datasets == [[11, True], [11, False]]
    row = page.locator("#class-table tbody tr", has_text="label 03")
    href = row.locator("a.class-link").get_attribute("href")
    assert href == f"/runs/{published.run.pk}/items/?sample={published.sample.pk}&label=/l/label03"
    row.locator("a.class-link").click()
    page.wait_for_url(re.compile(rf"/runs/{published.run.pk}/items/\?"))
    query = parse_qs(urlsplit(page.url).query)
    assert query == {"sample": [str(published.sample.pk)], "label": ["/l/label03"]}
    # The explorer shows that label's sample items, and only them.
    labels = page.locator(".explorer-card .label").all_inner_texts()
    sampled = published.sample.items.filter(prediction__label__key="/l/label03").count()
    assert set(labels) == {"label 03"}
    assert len(labels) == min(sampled, 48)  # the first page
    # Back on the dashboard, a threshold row opens the items kept at that θ.
    page.go_back()
    page.locator("#threshold-table a", has_text="0.6").click()
    page.wait_for_url(re.compile(r"/items/\?"))
    query = parse_qs(urlsplit(page.url).query)
    assert query == {"sample": [str(published.sample.pk)], "min_probability": ["0.6"]}


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_tables_sort_by_a_clicked_column_and_stay_sorted_live(page, live_server, small, ann):
    add_verdicts(
        [(si, ann, "hit" if i % 3 else "miss") for i, si in enumerate(small.sample_items[:6])]
    )
    login(page, live_server, "lee")
    page.goto(f"{live_server.url}/samples/{small.sample.pk}/")
    page.wait_for_function("() => document.body.dataset.chartsVersion")
    first_theta = "document.querySelector('#threshold-table tbody tr td').textContent.trim()"
    assert page.evaluate(first_theta) == "0.0"  # thresholds ascending
    page.click("#threshold-table th:first-child")  # ascending already: now descending
    page.click("#threshold-table th:first-child")
    assert page.evaluate(first_theta) == "1.0"
    # A new verdict swaps the tables in; the reader's order stays.
    version = page.evaluate("document.body.dataset.chartsVersion")
    add_verdicts([(small.sample_items[6], ann, "hit")])
    page.wait_for_function(f"() => document.body.dataset.chartsVersion !== '{version}'")
    assert page.evaluate(first_theta) == "1.0"
