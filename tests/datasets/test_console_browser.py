"""The admin console in Chromium: removing a member asks first, and a dataset import runs on a
real Celery worker while the page shows its progress."""

from pathlib import Path

import pytest

from annotate.datasets.access import role_on
from annotate.datasets.models import Dataset, ImportJob
from tests.conftest import login
from tests.datasets.conftest import write_jpeg

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_removing_a_member_asks_first(page, live_server, dataset, ada, ann) -> None:
    asked: list[str] = []
    login(page, live_server, "ada")
    page.goto(f"{live_server.url}/console/")
    remove = page.locator("#console-datasets button[title='remove ann from demo']")

    def dismiss(dialog) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    remove.click()
    page.wait_for_timeout(500)  # a request, had one been sent, would have answered by now
    assert asked == ["Remove ann (annotator) from the dataset demo? They will no longer see it."]
    assert page.url == f"{live_server.url}/console/"
    assert role_on(ann, dataset) == "annotator"

    page.once("dialog", lambda dialog: dialog.accept())
    remove.click()
    page.locator(".messages li", has_text="Removed ann from demo").wait_for()
    assert role_on(ann, dataset) is None
    assert role_on(dataset.memberships.first().user, dataset) is not None  # the others stay
    assert page.locator("#console-datasets button[title='remove ann from demo']").count() == 0


def test_removing_a_member_without_javascript_has_a_confirmation_step(
    browser, live_server, dataset, ada, ann
) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        login(page, live_server, "ada")
        page.goto(f"{live_server.url}/console/")
        page.click("#console-datasets button[title='remove ann from demo']")
        assert "/remove/" in page.url
        assert "Remove ann (annotator) from the dataset demo?" in page.inner_text("#member-remove")
        assert role_on(ann, dataset) == "annotator"
        page.click("#member-remove button[type=submit]")
        assert page.url.endswith("/console/")
        assert role_on(ann, dataset) is None
    finally:
        context.close()


def test_console_import_shows_progress_until_done(
    page, live_server, image_root: Path, ada, start_worker
) -> None:
    folder = image_root / "street"
    for n in range(1200):  # a few progress callbacks (every 500 headers)
        write_jpeg(folder / f"img{n:04d}.jpg", size=(8, 8))
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    start_worker(queues="default,gpu")  # like `make run`'s embedded worker
    login(page, live_server, "ada")
    page.goto(f"{live_server.url}/console/")
    page.fill("#dataset-import-form input[name=name]", "street")
    page.fill("#dataset-import-form input[name=folder]", str(folder))
    page.click("#dataset-import-form button[type=submit]")
    job = ImportJob.objects.get()
    row = page.locator(f"#import-job-list tr[data-job='{job.pk}']")
    row.locator("progress").wait_for()  # the bar is there from the start
    done = page.locator(f"#import-job-list tr[data-job='{job.pk}'][data-status=succeeded]")
    done.wait_for(timeout=90_000)  # polled by htmx until the worker is done
    assert done.locator("progress").get_attribute("value") == "100.0"
    assert "1201 images" in done.inner_text()
    assert "street: 1201 images (1201 new, 0 updated), 1 unreadable" in done.inner_text()
    dataset = Dataset.objects.get(name="street")
    assert dataset.items.count() == 1201
    # The polling stopped with the last answer; the link opens the dataset.
    assert page.locator("#console-import-jobs[hx-trigger]").count() == 0
    done.locator("a", has_text="open the dataset").click()
    page.wait_for_url(f"{live_server.url}/datasets/{dataset.pk}/")


def test_console_import_of_a_bad_folder_is_refused_in_the_form(
    page, live_server, image_root: Path, ada
) -> None:
    login(page, live_server, "ada")
    page.goto(f"{live_server.url}/console/")
    page.fill("#dataset-import-form input[name=name]", "nothing")
    page.fill("#dataset-import-form input[name=folder]", str(image_root / "missing"))
    page.click("#dataset-import-form button[type=submit]")
    error = page.locator("#dataset-import-form .errorlist", has_text="does not exist")
    error.wait_for()
    assert "image folder" in error.inner_text()
    assert not ImportJob.objects.exists()
