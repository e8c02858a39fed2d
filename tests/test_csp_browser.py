"""Every main page works in a real browser under the Content-Security-Policy: no violation, no
script error, and the charts, htmx polling, the annotation page and Swagger UI still run."""

from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client

from annotate.datasets.importers import dataset_import
from annotate.datasets.models import Item
from tests.conftest import PASSWORD
from tests.dashboards.conftest import add_verdicts, make_labels, make_run, make_sample
from tests.datasets.conftest import write_jpeg


def test_html_pages_carry_the_policy(client: Client, ann: User) -> None:
    for path in ("/accounts/login/", "/"):
        if path == "/":
            client.login(username="ann", password=PASSWORD)
        policy = client.get(path)["Content-Security-Policy"]
        directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
        assert directives["default-src"] == "'self'"
        assert directives["script-src"] == "'self'"
        assert directives["style-src"] == "'self'"
        assert directives["frame-ancestors"] == "'none'"
        assert "unsafe" not in policy


class Watched:
    """A logged-in browser context that records console errors and uncaught script errors."""

    def __init__(self, browser, live_server, username: str) -> None:
        self.base = live_server.url
        self.problems: list[str] = []
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"pageerror: {error}"))
        self.page.goto(f"{self.base}/accounts/login/")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(f"{self.base}/")

    def _console(self, message) -> None:
        if message.type in ("error", "warning") or "Content Security Policy" in message.text:
            self.problems.append(f"{message.type}: {message.text} ({self.page.url})")

    def open(self, path: str):
        self.page.goto(f"{self.base}{path}")
        self.page.wait_for_load_state("networkidle")
        return self.page

    def close(self) -> None:
        """Stop the page (and its pollers) before the test database is flushed."""
        if self.context is not None:
            self.context.close()
            self.context = None


@pytest.fixture
def watched(browser, live_server):
    opened: list[Watched] = []

    def open_as(username: str) -> Watched:
        opened.append(Watched(browser, live_server, username))
        return opened[-1]

    yield open_as
    for context in opened:
        context.close()


@pytest.fixture
def annotated(dataset, ann):
    """20 real images, a run over them and a sample of 12 with a few verdicts."""
    root = Path(dataset.image_root)
    for i in range(20):
        write_jpeg(root / f"img{i:02d}.jpg", size=(64, 48), colour=(10 * i, 80, 160))
    dataset_import(name=dataset.name, folder=root)
    items = list(Item.objects.filter(dataset=dataset).order_by("external_id"))
    taxonomy, labels = make_labels(4, name="scenes")
    run_labels = [labels[i % 4] for i in range(len(items))]
    probabilities = [0.3 + 0.03 * i for i in range(len(items))]
    run, predictions = make_run(dataset, taxonomy, items, run_labels, probabilities)
    sample, sample_items = make_sample(run, predictions[:12], wanted=2)
    add_verdicts([(sample_items[0], ann, "hit"), (sample_items[1], ann, "miss")])
    return run, sample


def chart_drawn(page, canvas_id: str) -> bool:
    return page.evaluate(f"Chart.getChart('{canvas_id}') !== undefined")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_main_pages_have_no_csp_violations(watched, annotated, dataset, ada, ann) -> None:
    run, sample = annotated
    admin = watched("ada")

    admin.open("/")
    admin.open(f"/datasets/{dataset.pk}/").locator("#item-gallery img").first.wait_for()

    page = admin.open(f"/runs/{run.pk}/")
    assert chart_drawn(page, "label-chart")
    assert chart_drawn(page, "coverage-chart")
    page.locator("progress.progress").first.wait_for()

    page = admin.open(f"/samples/{sample.pk}/")
    for canvas in ("chart-thresholds", "chart-classes", "chart-histogram"):
        assert chart_drawn(page, canvas), canvas
    with page.expect_request(lambda request: "/dashboard/poll/" in request.url):
        pass  # htmx keeps polling

    page = admin.open("/console/")
    page.locator("#console-run-rows tr").first.wait_for()  # the panel came in through htmx
    with page.expect_request(lambda request: "/console/runs/list/" in request.url):
        pass
    admin.open("/console/runs/")

    page = admin.open("/api/docs/")
    page.locator(".swagger-ui .opblock").first.wait_for()  # the schema loaded and rendered

    annotator = watched("ann")
    page = annotator.open(f"/samples/{sample.pk}/annotate/")
    page.locator("#stage img").first.wait_for()
    first = page.locator("#stage [data-item]").first.get_attribute("data-item")
    page.keyboard.press("h")
    page.wait_for_function(
        "first => { const el = document.querySelector('#stage [data-item]');"
        " return !el || el.dataset.item !== first; }",
        arg=first,
    )
    page.keyboard.press("?")
    assert page.locator("#help").is_visible()
    page.wait_for_function(
        "() => document.getElementById('annotate').dataset.inflight === '0'"
        " && !document.querySelector('.htmx-request')"
    )

    admin.close()
    annotator.close()
    assert admin.problems == []
    assert annotator.problems == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_login_lockout_page_in_the_browser(browser, live_server, ann) -> None:
    context = browser.new_context()
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: m.type == "error" and not m.text.startswith("Failed to load")
            and problems.append(m.text))  # fmt: skip
    page.on("pageerror", lambda error: problems.append(str(error)))
    for password in ["wrong"] * 10 + [PASSWORD]:
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=username]", "ann")
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_load_state()
    assert "Too many failed logins" in page.locator("#lockout").inner_text()
    assert page.url.endswith("/accounts/login/")
    context.close()
    assert problems == []
