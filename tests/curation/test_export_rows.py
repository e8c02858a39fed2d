"""The curated export's rows, one by one against the table of tests/curation/builders.py: CSV
and JSON lines, verdicts (confirmed, corrected, rejected), exclusions, the manifest, streaming
through a server-side cursor on PostgreSQL."""

import csv
import json
from pathlib import Path

import pytest
from django.db import connection

from annotate.errors import Conflict, FieldInvalid
from annotate.validation import curated_export
from annotate.validation.curated_export import ROW_FIELDS, export_write, manifest_path
from annotate.validation.curation import Rule, selection_compute
from annotate.validation.suspects import top_suspects
from classifier.models import DuplicateScan
from tests.curation.builders import TABLE, TRICKY, Curated, build_curated, expected_rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def built(dataset, ann) -> Curated:
    return build_curated(dataset, ann)


def select(built: Curated, *, include_unvalidated: bool = False):
    return selection_compute(
        sample=built.sample, rule=Rule(threshold=0.5, include_unvalidated=include_unvalidated)
    )


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_jsonl_rows_and_manifest(built: Curated, tmp_path: Path) -> None:
    out = tmp_path / "out" / "curated.jsonl"
    calls = []
    manifest = export_write(
        selection=select(built), fmt="jsonl", out=out, progress=lambda d, t: calls.append((d, t))
    )
    rows = read_jsonl(out)
    assert rows == expected_rows(built)
    assert all(list(row) == ROW_FIELDS for row in rows)
    assert rows[0]["caption"] == TRICKY  # JSON keeps the text as it is
    assert "ünïcödé ✓ 🙂" in out.read_text(encoding="utf-8")  # utf-8, not \u escapes
    assert calls[0] == (0, 11)
    assert calls[-1] == (11, 11)

    assert manifest == json.loads(manifest_path("jsonl", out).read_text())
    assert manifest_path("jsonl", out).name == "curated.manifest.json"
    assert manifest["counts"] == {
        "rows": 10, "confirmed": 6, "corrected": 2, "rejected": 1, "excluded_duplicates": 0,
        "excluded_suspects": 0, "missing_images": 0,
    }  # fmt: skip
    assert manifest["format"] == "jsonl"
    assert manifest["file"] == "curated.jsonl"
    assert manifest["run"]["id"] == built.run.pk
    assert manifest["run"]["weights"] == "openai"
    assert manifest["run"]["dataset"] == "demo"
    assert manifest["run"]["taxonomy"] == "curated"
    assert manifest["sample"]["id"] == built.sample.pk
    assert manifest["rule"] == {
        "kind": "threshold", "threshold": 0.5, "include_unvalidated": False,
        "exclude_duplicates": False, "exclude_suspects": 0,
    }  # fmt: skip
    assert manifest["estimate"]["selected"] == 11
    assert manifest["estimate"]["validated"] == 11
    assert manifest["estimate"]["unvalidated"] == 1
    assert manifest["verdicts"]["sample_verdicts"] == 10
    assert manifest["verdicts"]["items_with_facts"] == 11  # both samples' judged items
    assert manifest["command"] == (
        f"python manage.py export_curated {built.sample.pk} --threshold 0.5 --format jsonl "
        f"--out {out}"
    )
    assert manifest["image_root"] == built.dataset.image_root
    assert not list(out.parent.glob(".*"))  # no temporary file left


def test_csv_rows_are_formula_safe(built: Curated, tmp_path: Path) -> None:
    out = tmp_path / "curated.csv"
    export_write(selection=select(built, include_unvalidated=True), fmt="csv", out=out)
    with out.open(newline="", encoding="utf-8") as fh:
        table = list(csv.reader(fh))
    assert table[0] == ROW_FIELDS
    expected = expected_rows(built, include_unvalidated=True)
    assert len(table) == 1 + len(expected) == 12
    for cells, row in zip(table[1:], expected, strict=True):
        for name, cell in zip(ROW_FIELDS, cells, strict=True):
            value = row[name]
            if name == "caption" and value[:1] in "=+-@":
                assert cell == "'" + value  # a spreadsheet shows it, never runs it
            elif value is None:
                assert cell == ""
            elif isinstance(value, float):
                assert float(cell) == pytest.approx(value)
            else:
                assert cell == str(value)
    assert table[1][3] == "'" + TRICKY  # quotes, newline and emoji survive the round trip
    assert table[3][3] == "'+1 plain -2"  # item 3 (item 2 is rejected)


def test_target_precision_rule(built: Curated, tmp_path: Path) -> None:
    """Per-label thresholds: the rows are exactly those `selection_filter` counts."""
    selection = selection_compute(sample=built.sample, rule=Rule(target_precision=0.2))
    out = tmp_path / "t.jsonl"
    manifest = export_write(selection=selection, fmt="jsonl", out=out)
    kept = {row["item"] for row in read_jsonl(out)}
    theta = selection.thresholds
    expected = {
        built.items[i].pk
        for i, (label, p, *_rest) in TABLE.items()
        if built.labels[label].pk in theta and p >= theta[built.labels[label].pk] - 1e-9
        and TABLE[i][4] != "rejected"
    }  # fmt: skip
    assert kept == expected
    assert manifest["rule"]["kind"] == "target_precision"
    assert "--target-precision 0.2" in manifest["command"]


def test_exclude_duplicates_keeps_the_first_written_member(built: Curated, tmp_path) -> None:
    ids = [item.pk for item in built.items]
    # Item 2 is rejected, so item 3 is its group's first written member and item 6 goes;
    # item 9 goes after item 7; item 12 is not selected at all.
    DuplicateScan.objects.create(
        run=built.run, min_similarity=0.97, status="succeeded",
        groups=[{"items": [ids[2], ids[3], ids[6]], "similarity": 0.98},
                {"items": [ids[7], ids[9], ids[12]], "similarity": 0.99}],
    )  # fmt: skip
    out = tmp_path / "d.jsonl"
    manifest = export_write(selection=select(built), fmt="jsonl", out=out, exclude_duplicates=True)
    kept = [row["item"] for row in read_jsonl(out)]
    expected = [row["item"] for row in expected_rows(built) if row["item"] not in (ids[6], ids[9])]
    assert kept == expected
    assert manifest["counts"]["excluded_duplicates"] == 2
    assert manifest["rule"]["exclude_duplicates"] is True
    assert manifest["duplicates_scan"]["groups"] == 2
    assert manifest["command"].endswith("--exclude-duplicates")


def test_exclude_duplicates_without_a_finished_scan(built: Curated, tmp_path: Path) -> None:
    DuplicateScan.objects.create(run=built.run, min_similarity=0.97, status="running")
    DuplicateScan.objects.create(run=built.run, min_similarity=0.9, status="succeeded")
    out = tmp_path / "exports" / "d.jsonl"
    with pytest.raises(Conflict, match=f"/runs/{built.run.pk}/duplicates/"):
        export_write(selection=select(built), fmt="jsonl", out=out, exclude_duplicates=True)
    assert not out.parent.exists()  # refused before anything is written


def test_exclude_suspects(built: Curated, tmp_path: Path) -> None:
    suspects = {s.item for s in top_suspects(run=built.run, limit=4)}
    assert len(suspects) == 4
    out = tmp_path / "s.jsonl"
    manifest = export_write(selection=select(built), fmt="jsonl", out=out, exclude_suspects=4)
    kept = [row["item"] for row in read_jsonl(out)]
    all_rows = [row["item"] for row in expected_rows(built)]
    rejected = built.items[2].pk
    assert kept == [i for i in all_rows if i not in suspects]
    assert manifest["counts"]["excluded_suspects"] == len(suspects & (set(all_rows) | {rejected}))
    assert manifest["rule"]["exclude_suspects"] == 4


@pytest.mark.parametrize("value", [-1, 100_001, "x", 2.5])
def test_exclude_suspects_bounds(built: Curated, tmp_path: Path, value) -> None:
    with pytest.raises(FieldInvalid, match="from 1 to 100,000"):
        export_write(selection=select(built), fmt="csv", out=tmp_path / "x.csv",
                     exclude_suspects=value)  # fmt: skip


def test_bad_format_and_target(built: Curated, tmp_path: Path) -> None:
    with pytest.raises(FieldInvalid, match="format must be one of"):
        export_write(selection=select(built), fmt="xml", out=tmp_path / "x.xml")
    with pytest.raises(FieldInvalid, match="is a directory"):
        export_write(selection=select(built), fmt="csv", out=tmp_path)


def test_streams_through_a_server_side_cursor(built: Curated, tmp_path, monkeypatch) -> None:
    """On PostgreSQL the rows come from a named cursor that stays open while rows are
    written, CHUNK_ROWS at a time (here 3, so progress is called in the middle)."""
    if connection.vendor != "postgresql":
        pytest.skip("server-side cursors are PostgreSQL's")
    monkeypatch.setattr(curated_export, "CHUNK_ROWS", 3)
    seen = []

    def progress(done: int, total: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_cursors WHERE NOT is_holdable")
            seen.append((done, total, cursor.fetchone()[0]))

    export_write(selection=select(built), fmt="jsonl", out=tmp_path / "x.jsonl",
                 progress=progress)  # fmt: skip
    assert [d for d, _t, _c in seen] == [0, 3, 6, 9, 11]
    assert all(open_cursors == 1 for done, _t, open_cursors in seen if 0 < done < 11)


@pytest.mark.django_db(transaction=True)
def test_reads_on_its_own_connection_outside_a_transaction(dataset, ann, tmp_path) -> None:
    """A worker holds no transaction: the read gets a connection of its own, so what
    `progress` writes through the ORM commits at once (the export task's `done`)."""
    if connection.vendor != "postgresql":
        pytest.skip("the second connection is for PostgreSQL's server-side cursor")
    built = build_curated(dataset, ann)
    states = []

    def progress(done: int, total: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                "AND datname = current_database() AND state = 'idle in transaction' "
                "AND (query LIKE 'DECLARE%%' OR query LIKE 'FETCH%%')"
            )
            states.append((done, connection.get_autocommit(), cursor.fetchone()[0]))

    out = tmp_path / "x.jsonl"
    export_write(selection=select(built), fmt="jsonl", out=out, progress=progress)
    assert read_jsonl(out) == expected_rows(built)
    assert all(autocommit for _d, autocommit, _n in states)
    assert any(reading == 1 for done, _a, reading in states if done > 0)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"caption": TRICKY + "\x00\x1f\u2028\\", "external_id": 'a"b', "label_precision": None},
        {"probability": 1.0, "label_precision": 0.0, "image_path": ""},
        {"probability": float("nan")},  # never stored, but then json.dumps decides
        {"probability": 1, "item": True},
    ],
)
def test_json_line_is_json_dumps(changes) -> None:
    row = {
        "item": 12, "external_id": "x.jpg", "image_path": "a/x.jpg", "caption": "c",
        "label": "/b/beach", "label_name": "beach", "probability": 0.1 + 0.2, "verdict": "",
        "predicted_label": "/b/beach", "label_precision": 2 / 3, **changes,
    }  # fmt: skip
    assert curated_export.json_line(row) == json.dumps(row, ensure_ascii=False)
