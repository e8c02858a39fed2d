"""ITR exports: the corrected test set, the test set without the changed items, and the
changes (list format, round-tripping through `import_itr --controversial`, or CSV), through
the API and `export_itr`; CSV cells that a spreadsheet would run are neutralised."""

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command

from annotate.itr.models import ItrItem
from annotate.itr.services import decision_record, review_record
from tests.itr.conftest import api_for

# Rows 0-1 train; rows 2-9 test.
LABELS = [(0, 0), (1, 1), (0, 1), (1, 0), (1, 1), (0, 0), (0, 0), (1, 1), (0, 1), (1, 0)]


def vote(dataset, row: int, reviewers, labels, reason: str = "because") -> None:
    item = ItrItem.objects.get(dataset=dataset, row=row)
    for user, (t, i) in zip(reviewers, labels, strict=False):
        changed = (t, i) != item.original
        review_record(
            item=item,
            reviewer=user,
            text_is_represented=t,
            image_adds=i,
            reason=f"{user.username} {reason}" if changed else "",
        )


@pytest.fixture
def studied(make_itr, reviewers, lee):
    """Row 2: 01 -> 11 by consensus (text); row 3: 10 -> 11 (image) with a formula-like
    reason; row 4: 11 -> 00 decided by lee (both); row 5: confirmed 00; row 6: a 2-1 split
    that keeps 00; rows 7-9 unreviewed."""
    dataset = make_itr(LABELS, split=2)
    vote(dataset, 2, reviewers, [(1, 1), (1, 1), (0, 1)])
    vote(dataset, 3, reviewers, [(1, 1), (1, 1), (1, 1)], reason="=HYPERLINK(evil)")
    vote(dataset, 4, reviewers, [(1, 1), (1, 1), (1, 1)])
    item = ItrItem.objects.get(dataset=dataset, row=4)
    decision_record(item=item, lead=lee, text_is_represented=0, image_adds=0, note="-not shown")
    vote(dataset, 5, reviewers, [(0, 0)] * 3)
    vote(dataset, 6, reviewers, [(0, 0), (0, 0), (1, 0)])
    return dataset


def export(user, dataset, which: str, fmt: str | None = None):
    url = f"/api/itr/{dataset.pk}/export/?set={which}"
    if fmt:
        url += f"&format={fmt}"
    return api_for(user).get(url)


def rows_of(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_corrected(studied, lee) -> None:
    response = export(lee, studied, "corrected")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="small-itr-corrected.csv"' in response["Content-Disposition"]
    rows = rows_of(response)
    assert [int(r["row"]) for r in rows] == list(range(2, 10))
    assert list(rows[0]) == [
        "row", "tweet_id", "user_id", "tweet", "text_is_represented", "image_adds",
        "original_text_is_represented", "original_image_adds", "status", "changed", "reviews",
        "reasons", "decision", "decision_note", "decided_by",
    ]  # fmt: skip
    by_row = {int(r["row"]): r for r in rows}
    two = by_row[2]
    assert two["tweet_id"] == "1002"
    assert two["tweet"] == 'tweet 2 says "hi" @user https://t.co/x2'
    assert (two["text_is_represented"], two["image_adds"]) == ("1", "1")
    assert (two["original_text_is_represented"], two["original_image_adds"]) == ("0", "1")
    assert two["status"] == "consensus"
    assert two["changed"] == "text"
    assert two["reviews"] == "3"
    assert two["reasons"] == "rev1: rev1 because | rev2: rev2 because"
    assert two["decision"] == ""
    # A reason a spreadsheet would run as a formula starts with a quote in the file.
    assert by_row[3]["changed"] == "image"
    assert by_row[3]["reasons"].startswith("rev1: rev1 =HYPERLINK")
    four = by_row[4]
    assert (four["status"], four["changed"], four["decision"]) == ("decided", "both", "00")
    assert four["decision_note"] == "'-not shown"
    assert four["decided_by"] == "lee"
    assert (by_row[6]["changed"], by_row[6]["status"]) == ("", "consensus")
    assert (by_row[9]["status"], by_row[9]["reviews"]) == ("pending", "0")


def test_removed_and_changes_csv(studied, lee) -> None:
    removed = rows_of(export(lee, studied, "removed"))
    assert [int(r["row"]) for r in removed] == [5, 6, 7, 8, 9]
    changes = export(lee, studied, "changes", "csv")
    assert 'filename="small-itr-changes.csv"' in changes["Content-Disposition"]
    assert [(int(r["row"]), r["changed"]) for r in rows_of(changes)] == [
        (2, "text"),
        (3, "image"),
        (4, "both"),
    ]


def test_changes_list(studied, lee) -> None:
    response = export(lee, studied, "changes")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content.decode() == "01->11: 2\n10->11: 3\n11->00: 4\n"
    assert export(lee, studied, "changes", "list").content == response.content


def test_changes_list_orders_lines_as_the_published_list(make_itr, reviewers) -> None:
    # Every transition once: rows 0-11 hold the 12 (original, target) pairs in reverse order.
    codes = ["00", "01", "10", "11"]
    order = [(o, kind) for kind in ("text", "image", "both") for o in codes]
    flips = {"text": (1, 0), "image": (0, 1), "both": (1, 1)}
    plan = list(reversed(order))
    labels = [(int(o[0]), int(o[1])) for o, _ in plan]
    dataset = make_itr([*labels, (0, 0)], split=0, quorum=1)
    for row, (o, kind) in enumerate(plan):
        t, i = (int(o[0]) ^ flips[kind][0], int(o[1]) ^ flips[kind][1])
        vote(dataset, row, reviewers[:1], [(t, i)])
    text = export_text(dataset, "changes")
    lines = text.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "00->10", "01->11", "10->00", "11->01", "00->01", "01->00", "10->11", "11->10",
        "00->11", "01->10", "10->01", "11->00",
    ]  # fmt: skip
    assert lines[0] == f"00->10: {plan.index(('00', 'text'))}"


def export_text(dataset, which: str, *args: str) -> str:
    out = io.StringIO()
    call_command("export_itr", dataset.name, "--set", which, *args, stdout=out)
    return out.getvalue()


def test_changes_list_round_trips_through_import(studied, tmp_path) -> None:
    listing = tmp_path / "changes.txt"
    call_command("export_itr", str(studied.pk), "--set", "changes", "--out", str(listing))
    out = io.StringIO()
    call_command(
        "import_itr", "small", str(tmp_path / "small.csv"), "--split", "2",
        "--controversial", str(listing), "--json", stdout=out,
    )  # fmt: skip
    assert json.loads(out.getvalue())["controversial"] == {
        "listed": 3,
        "text": 1,
        "image": 1,
        "both": 1,
    }
    listed = ItrItem.objects.filter(dataset=studied, listed=True).order_by("row")
    assert [(i.row, i.listed_text, i.listed_image) for i in listed] == [
        (2, 1, 1),
        (3, 1, 1),
        (4, 0, 0),
    ]
    # The reviews and the decision survive the re-import.
    assert ItrItem.objects.get(dataset=studied, row=4).status == "decided"
    assert export_text(studied, "changes") == listing.read_text()


def test_command(studied, tmp_path) -> None:
    assert export_text(studied, "corrected") == export_text(studied, "corrected", "--format", "csv")
    assert export_text(studied, "corrected").splitlines()[0].startswith("row,tweet_id,")
    target = tmp_path / "removed.csv"
    out = io.StringIO()
    call_command(
        "export_itr", "small", "--set", "removed", "--out", str(target), "--json", stdout=out
    )
    assert json.loads(out.getvalue()) == {
        "dataset": "small",
        "dataset_id": studied.pk,
        "set": "removed",
        "format": "csv",
        "items": 5,
        "out": str(target),
    }
    assert len(target.read_text().splitlines()) == 6
    with pytest.raises(CommandError, match="list format"):
        call_command("export_itr", "small", "--set", "corrected", "--format", "list")
    with pytest.raises(CommandError, match="no ITR dataset"):
        call_command("export_itr", "nope", "--set", "corrected")
    with pytest.raises(CommandError, match="--out"):
        call_command("export_itr", "small", "--set", "corrected", "--json")


def test_a_non_itr_dataset_is_not_exported(dataset) -> None:
    with pytest.raises(CommandError, match="no ITR dataset"):
        call_command("export_itr", dataset.name, "--set", "corrected")


def test_who_may_export(studied, lee, reviewers, otto, ada) -> None:
    # Leads and admins, as the verdict export; reviewers 403, outsiders 404.
    assert export(reviewers[0], studied, "corrected").status_code == 403
    assert export(otto, studied, "corrected").status_code == 404
    assert export(ada, studied, "changes").status_code == 200


def test_bad_parameters(studied, lee) -> None:
    client = api_for(lee)
    base = f"/api/itr/{studied.pk}/export/"
    for query in ("", "?set=all", "?set=corrected&format=xml", "?set=corrected&format=list"):
        response = client.get(base + query)
        assert response.status_code in (400, 404), query
        assert response["Content-Type"] == "application/json", query
    bad = client.get(base + "?set=corrected&format=list")
    assert bad.status_code == 400
    assert "list format" in bad.json()["detail"]
    assert client.get(base + "?set=removed&format=csv").status_code == 200


def test_empty_changes(make_itr, lee, tmp_path) -> None:
    dataset = make_itr([(0, 0), (1, 1)], split=1)
    assert export(lee, dataset, "changes").content == b""
    assert len(rows_of(export(lee, dataset, "corrected"))) == 1
