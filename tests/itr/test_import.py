"""`import_itr`: the published dataset and list, every kind of bad input (reported per line,
nothing imported) and re-imports (updates, never duplicates; reviews kept)."""

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from annotate.datasets.models import Dataset, Item
from annotate.itr.importers import ItrImportError, itr_import
from annotate.itr.models import ItrItem, ItrReview
from annotate.itr.services import review_record
from tests.itr.conftest import HEADER, ITR_CSV, ITR_LIST, small_csv


def import_json(*args: str) -> dict:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_itr", *args, "--json", stdout=out, stderr=err)
    return json.loads(out.getvalue())  # stdout is exactly one JSON document


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_published_dataset_and_list(db) -> None:
    result = import_json("itr", str(ITR_CSV), "--controversial", str(ITR_LIST))
    assert result["items"] == 4471
    assert (result["train"], result["test"]) == (3576, 895)
    assert (result["created"], result["updated"]) == (4471, 0)
    assert result["text_is_represented_percent"] == 40.5
    assert result["image_adds_percent"] == 44.2
    assert result["with_image"] == 0
    assert result["controversial"] == {"listed": 218, "text": 124, "image": 61, "both": 33}
    dataset = Dataset.objects.get(name="itr")
    assert dataset.kind == "itr"
    items = ItrItem.objects.filter(dataset=dataset)
    assert items.filter(split="train").count() == 3576
    assert items.filter(split="test").count() == 895
    assert items.filter(split="test").order_by("row").first().row == 3576
    assert items.filter(listed=True, split="test").count() == 218
    assert Item.objects.filter(dataset=dataset).count() == 4471
    # Row 3 holds a backslash-escaped quote; the text keeps the quote itself.
    row3 = items.get(row=3)
    assert row3.item.caption.startswith('This is my "I am so done with eve')
    # The list's labels: row 3997 goes 01 -> 11.
    listed = items.get(row=3997)
    assert listed.original == (0, 1)
    assert (listed.listed_text, listed.listed_image) == (1, 1)
    # Listed items come first in the review queue.
    first = items.filter(split="test").order_by("priority").first()
    assert first.listed

    # Re-importing the same files updates: no duplicate.
    again = import_json("itr", str(ITR_CSV), "--controversial", str(ITR_LIST))
    assert (again["created"], again["updated"]) == (0, 4471)
    assert ItrItem.objects.filter(dataset=dataset).count() == 4471
    assert Item.objects.filter(dataset=dataset).count() == 4471
    assert items.filter(listed=True).count() == 218


def test_people_readable_output(db, tmp_path) -> None:
    path = small_csv(tmp_path / "s.csv", [(0, 0), (1, 1), (0, 1)])
    out = io.StringIO()
    call_command("import_itr", "s", str(path), "--split", "1", stdout=out, stderr=io.StringIO())
    assert "3 items (1 train, 2 test; 3 new, 0 updated)" in out.getvalue()


BAD_CSVS = {
    "malformed row": (
        HEADER + '"1","2","a","0","1"\n"2","3","b","0"\n"3","4","c","1","1"\n',
        ["line 3: 4 fields where the header has 5"],
    ),
    "unescaped quote": (
        HEADER + '"1","2","a "quoted" word","0","1"\n"2","3","b","0","0"\n',
        ['line 2: a quote inside a field is not escaped as \\"'],
    ),
    "unescaped quote splitting fields": (
        HEADER + '"1","2","ok","0","1"\n"2","3","say "hi,"","0","0"\n',
        ["line 3: 6 fields where the header has 5"],
    ),
    "quote never closed": (
        HEADER + '"1","2","a","0","1"\n"2","3","never closed\n',
        ["line 3: unexpected end of data"],
    ),
    "label values": (
        HEADER + '"1","2","a","2","1"\n"2","3","b","0","yes"\n"3","4","c","","1"\n',
        [
            "line 2: text_is_represented is '2', not 0 or 1",
            "line 3: image_adds is 'yes', not 0 or 1",
            "line 4: text_is_represented is '', not 0 or 1",
        ],
    ),
    "duplicate tweet ids": (
        HEADER + '"1","2","a","0","1"\n"5","3","b","0","0"\n"1","4","c","1","1"\n',
        ["line 4: tweet_id 1 repeats line 2"],
    ),
    "tweet id not a number": (HEADER + '"x1","2","a","0","1"\n', ["line 2: tweet_id 'x1'"]),
    "missing column": ('"tweet_id","tweet"\n"1","a"\n', ["lacks the column(s) user_id"]),
    "no data": (HEADER, ["no data rows"]),
    "empty": ("", ["empty"]),
}


@pytest.mark.parametrize("case", list(BAD_CSVS))
def test_bad_csv_is_reported_per_line_and_nothing_imported(db, tmp_path, case) -> None:
    text, messages = BAD_CSVS[case]
    path = write(tmp_path, "bad.csv", text)
    with pytest.raises(CommandError) as caught:
        call_command("import_itr", "bad", str(path), stdout=io.StringIO())
    for message in messages:
        assert message in str(caught.value)
    assert not Dataset.objects.filter(name="bad").exists()
    assert not ItrItem.objects.exists()
    assert not Item.objects.exists()


def test_errors_after_a_multiline_tweet_name_the_physical_line(db, tmp_path) -> None:
    text = HEADER + '"1","2","two\nlines","0","1"\n"2","3","b","0","0"\n"3","4","c","x","1"\n'
    with pytest.raises(ItrImportError) as caught:
        itr_import(name="m", csv_path=write(tmp_path, "m.csv", text))
    assert caught.value.errors == ["line 5: text_is_represented is 'x', not 0 or 1"]


BAD_LISTS = {
    "rows that do not exist": ("00->10: 2, 4470\n", ["line 1: row 4470 is not in dataset"]),
    "from labels that contradict": (
        "00->10: 2\n01->11: 3, 4\n",  # rows 3 and 4 are 10 and 11
        ["line 2: row 3 is labelled 10, not 01", "line 2: row 4 is labelled 11, not 01"],
    ),
    "malformed lines": (
        "00->10: 2\n0->1: 3\n11->11: 4\n10->00: x\n",
        [
            "line 2: expected 'AB->CD: row, row, ...'",
            "line 3: 11->11 changes nothing",
            "line 4: 'x' is not a row number",
        ],
    ),
    "a row listed twice": ("00->10: 2\n00->01: 2\n", ["line 2: row 2 is already listed on line 1"]),
}
LIST_LABELS = [(0, 0), (1, 1), (0, 0), (1, 0), (1, 1)]


@pytest.mark.parametrize("case", list(BAD_LISTS))
def test_bad_list_on_import_is_reported_per_line_and_nothing_imported(db, tmp_path, case):
    text, messages = BAD_LISTS[case]
    csv_path = small_csv(tmp_path / "s.csv", LIST_LABELS)
    listing = write(tmp_path, "list.txt", text)
    with pytest.raises(CommandError) as caught:
        call_command(
            "import_itr", "s", str(csv_path), "--split", "2", "--controversial", str(listing)
        )
    for message in messages:
        assert message in str(caught.value)
    assert not Dataset.objects.filter(name="s").exists()
    assert not ItrItem.objects.exists()


def test_bad_list_on_a_reimport_changes_nothing(db, tmp_path) -> None:
    csv_path = small_csv(tmp_path / "s.csv", LIST_LABELS)
    good = write(tmp_path, "good.txt", "00->10: 2\n")
    import_json("s", str(csv_path), "--split", "2", "--controversial", str(good))
    bad = write(tmp_path, "bad.txt", "11->01: 4\n00->01: 9\n")
    with pytest.raises(CommandError, match="row 9 is not in dataset s"):
        call_command("import_itr", "s", str(csv_path), "--controversial", str(bad))
    listed = ItrItem.objects.filter(listed=True)
    assert [(i.row, i.listed_text, i.listed_image) for i in listed] == [(2, 1, 0)]
    assert ItrItem.objects.get(row=2).split == "test"  # the split of the first import stays
    # A good list replaces the earlier one.
    other = write(tmp_path, "other.txt", "11->01: 4\n")
    import_json("s", str(csv_path), "--split", "2", "--controversial", str(other))
    assert [i.row for i in ItrItem.objects.filter(listed=True)] == [4]


def test_reimport_updates_labels_texts_and_rows_and_keeps_reviews(db, tmp_path, reviewers):
    path = small_csv(tmp_path / "s.csv", [(0, 0), (1, 1), (0, 1)], texts=["a", "b", "c"])
    first = import_json("s", str(path), "--split", "1")
    item = ItrItem.objects.get(tweet_id="1002")
    review_record(item=item, reviewer=reviewers[0], text_is_represented=0, image_adds=1)
    # The same tweets with a new text, a corrected label, rows 1 and 2 swapped, and a new one.
    lines = [
        HEADER,
        '"1000","0","a","0","0"\n',
        '"1002","2","c (edited)","0","1"\n',
        '"1001","1","b","1","0"\n',
        '"1003","3","d","1","1"\n',
    ]
    path.write_text("".join(lines))
    again = import_json("s", str(path), "--split", "1")
    assert again["dataset_id"] == first["dataset_id"]
    assert (again["created"], again["updated"]) == (1, 3)
    assert ItrItem.objects.count() == 4
    assert Item.objects.count() == 4
    moved = ItrItem.objects.get(tweet_id="1002")
    assert moved.pk == item.pk
    assert moved.row == 1
    assert moved.item.caption == "c (edited)"
    assert ItrReview.objects.filter(item=moved).count() == 1  # the review is kept
    assert moved.review_count == 1
    relabelled = ItrItem.objects.get(tweet_id="1001")
    assert (relabelled.row, relabelled.original, relabelled.final) == (2, (1, 0), (1, 0))


def test_command_refusals(db, tmp_path, dataset) -> None:
    path = small_csv(tmp_path / "s.csv", [(0, 0)])
    with pytest.raises(CommandError, match="does not exist"):
        call_command("import_itr", "s", str(tmp_path / "none.csv"))
    with pytest.raises(CommandError, match="not an ITR dataset"):
        call_command("import_itr", dataset.name, str(path))
    with pytest.raises(CommandError, match="letters, digits"):
        call_command("import_itr", "bad name", str(path))
    with pytest.raises(CommandError, match="split"):
        call_command("import_itr", "s", str(path), "--split", "-1")
    with pytest.raises(CommandError, match="list file"):
        call_command("import_itr", "s", str(path), "--controversial", str(tmp_path / "no.txt"))
