"""The ITR review page, server-rendered parts with the test client: who may open it, the item
fragment and its queue, the untrusted tweet text, the missing image, blind mode, progress."""

import pytest
from django.test import Client
from PIL import Image

from annotate.datasets.access import membership_set
from annotate.datasets.models import Role
from annotate.itr.models import ItrItem
from annotate.itr.services import review_record
from tests.conftest import PASSWORD, make_user

LABELS = [(0, 0), (1, 1), (0, 1), (1, 0)]


def client_for(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


@pytest.fixture
def small(make_itr, image_root):
    """Four test items; only the first (tweet 1000) has an image."""
    folder = image_root / "tweets"
    folder.mkdir()
    Image.new("RGB", (8, 6), "red").save(folder / "T1000.jpg")
    return make_itr(LABELS, split=0, images=folder)


def item_ids(html: str) -> list[int]:
    marker = 'class="itr-item" data-item="'
    return [int(part.split('"', 1)[0]) for part in html.split(marker)[1:]]


def test_page_renders_for_a_reviewer(small, reviewers) -> None:
    response = client_for("rev1").get(f"/itr/{small.pk}/review/")
    assert response.status_code == 200
    html = response.content.decode()
    first = ItrItem.objects.get(dataset=small, row=0)
    assert item_ids(html) == [first.pk]  # leased: the first item by queue order
    assert f"/items/{first.item_id}/image/" in html
    assert "js/workqueue.js" in html
    assert "js/itr_review.js" in html
    assert 'id="help"' in html
    assert "Is the text represented in the image?" in html  # the guidelines, in the help
    assert "decorative or redundant" in html
    assert 'data-reviews-url="/api/itr/reviews/"' in html
    assert 'data-undo-url="/api/itr/reviews/0/undo/"' in html
    assert 'data-original-text="0" data-original-image="0"' in html
    assert "Original labels: text 0 · image 0" in html
    assert 'id="mine-count">0<' in html
    # Strict CSP: no inline script or style.
    assert "<script>" not in html
    assert "<style" not in html
    assert " style=" not in html


def test_login_required_and_other_people_get_404(small, make_itr, dataset, reviewers, otto) -> None:
    url = f"/itr/{small.pk}/review/"
    anonymous = Client().get(url)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/accounts/login/")
    for path in (url, url + "item/", url + "progress/"):
        assert client_for("otto").get(path).status_code == 404, path
    # A reviewer of another ITR dataset: 404 here too.
    other = make_itr([(1, 1)], split=0, name="other")
    rae = make_user("rae")
    membership_set(dataset=other, user=rae, role=Role.ANNOTATOR)
    assert client_for("rae").get(url).status_code == 404
    assert client_for("rae").get(f"/itr/{other.pk}/review/").status_code == 200
    # An images dataset has no review page, even for its members.
    membership_set(dataset=dataset, user=reviewers[0], role=Role.ANNOTATOR)
    assert client_for("rev1").get(f"/itr/{dataset.pk}/review/").status_code == 404


def test_fragment_excludes_held_items_and_answers_204_when_done(small, reviewers) -> None:
    client = client_for("rev1")
    url = f"/itr/{small.pk}/review/item/"
    held: list[int] = []
    for _ in LABELS:
        response = client.get(url + "?exclude=" + ",".join(map(str, held)))
        assert response.status_code == 200
        [item] = item_ids(response.content.decode())
        assert item not in held
        held.append(item)
    assert client.get(url + "?exclude=" + ",".join(map(str, held))).status_code == 204
    # Reviewed items never come back; `?item=` shows one again (after an undo).
    for pk in held:
        item = ItrItem.objects.get(pk=pk)
        review_record(
            item=item,
            reviewer=reviewers[0],
            text_is_represented=item.text_is_represented,
            image_adds=item.image_adds,
        )
    assert client.get(url).status_code == 204
    again = client.get(f"{url}?item={held[1]}")
    assert item_ids(again.content.decode()) == [held[1]]
    assert client.get(f"{url}?item=999999").status_code == 404
    # Bad exclude values are ignored, never a 500.
    assert client.get(url + "?exclude=x,,-1,%00").status_code == 204
    page = client.get(f"/itr/{small.pk}/review/").content.decode()
    assert item_ids(page) == []
    assert "Nothing left for you to review here" in page


def test_train_items_are_not_reviewed(make_itr, reviewers) -> None:
    dataset = make_itr(LABELS, split=3)  # rows 0-2 train, row 3 test
    client = client_for("rev2")
    test_item = ItrItem.objects.get(dataset=dataset, row=3)
    assert item_ids(client.get(f"/itr/{dataset.pk}/review/").content.decode()) == [test_item.pk]
    train = ItrItem.objects.get(dataset=dataset, row=0)
    assert client.get(f"/itr/{dataset.pk}/review/item/?item={train.pk}").status_code == 404


def test_missing_image_is_said_plainly(small, reviewers) -> None:
    second = ItrItem.objects.get(dataset=small, row=1)
    html = client_for("rev1").get(f"/itr/{small.pk}/review/item/?item={second.pk}")
    body = html.content.decode()
    assert "The image is missing." in body
    assert "<img" not in body
    assert "data-image=" not in body
    assert "tweet 1 says" in body  # the text is still shown


def test_tweet_text_is_escaped_and_links_stay_text(small, reviewers) -> None:
    item = ItrItem.objects.select_related("item").get(dataset=small, row=0)
    item.item.caption = (
        '<script>alert("x")</script> @mention https://t.co/x https://example.org/' + "a" * 300
    )
    item.item.save(update_fields=["caption"])
    body = client_for("rev1").get(f"/itr/{small.pk}/review/").content.decode()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; @mention https://t.co/x" in body
    assert '<script>alert("x")' not in body
    assert 'href="https://t.co/x"' not in body
    assert 'href="https://example.org' not in body


def test_blind_mode_renders_no_original_labels(small, reviewers) -> None:
    client = client_for("rev1")
    html = client.get(f"/itr/{small.pk}/review/?blind=1").content.decode()
    assert item_ids(html)
    assert "data-original-text" not in html
    assert "Original labels" not in html
    assert 'class="itr-orig-mark"' not in html
    assert 'aria-pressed="true"' not in html  # both toggles unset
    assert "Blind review: the original labels are hidden." in html
    assert f'data-item-url="/itr/{small.pk}/review/item/?blind=1"' in html
    fragment = client.get(f"/itr/{small.pk}/review/item/?blind=1&exclude={item_ids(html)[0]}")
    assert "data-original" not in fragment.content.decode()
    assert "data-original" in client.get(f"/itr/{small.pk}/review/item/").content.decode()


def test_progress_counts_mine_and_the_quorum(make_itr, reviewers) -> None:
    dataset = make_itr(LABELS, split=0)
    items = list(ItrItem.objects.filter(dataset=dataset).order_by("row"))
    for reviewer in reviewers[:3]:
        review_record(item=items[0], reviewer=reviewer, text_is_represented=0, image_adds=0)
    review_record(item=items[1], reviewer=reviewers[0], text_is_represented=1, image_adds=1)
    html = client_for("rev1").get(f"/itr/{dataset.pk}/review/progress/").content.decode()
    assert 'id="mine-count">2<' in html
    assert 'id="quorum-count">1<' in html
    assert '/ 4 <span class="itr-wide">test items' in html
    other = client_for("rev4").get(f"/itr/{dataset.pk}/review/progress/").content.decode()
    assert 'id="mine-count">0<' in other


def test_dataset_page_links_to_the_review_page(small, reviewers) -> None:
    html = client_for("rev1").get(f"/datasets/{small.pk}/").content.decode()
    assert f'href="/itr/{small.pk}/review/"' in html
