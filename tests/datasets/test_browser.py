"""In a real browser: the dataset page shows thumbnails and captions as inert text."""

from pathlib import Path

import pytest

from annotate.datasets.importers import dataset_import
from tests.conftest import login
from tests.datasets.conftest import write_jpeg

SCRIPT = '<img src=x onerror="alert(1)"><script>alert(2)</script>'


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_gallery_shows_thumbnails_and_inert_captions(page, live_server, dataset) -> None:
    root = Path(dataset.image_root)
    write_jpeg(root / "a.jpg", size=(80, 60))
    (root / "a.txt").write_text(SCRIPT)
    dataset_import(name="demo", folder=root)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    login(page, live_server, "ann")
    page.click("#dataset-list a:text('demo')")
    caption = page.locator("#item-gallery .caption").first
    assert caption.inner_text() == SCRIPT  # shown as text, not markup
    thumb = page.locator("#item-gallery img").first
    thumb.wait_for()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle()
    )
    assert page.locator("#status-counts [data-status=ok]").inner_text() == "1"
    assert dialogs == []
