"""The queued curated export: `curated_export_run` in this process (CSV and a zipped
imagefolder through the real writer, a failure, a redelivered task, throttled progress), then a
real Celery worker writing an export asked for through the API, downloaded with its manifest."""

import csv
import io
import json
import time
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotate.validation import curated_jobs
from annotate.validation.curated_jobs import curated_export_request, curated_export_run
from annotate.validation.curation import parse_rule
from annotate.validation.models import CuratedExport
from tests.datasets.conftest import write_jpeg
from tests.validation.conftest import api_for


def media(path: str) -> Path:
    return Path(settings.MEDIA_ROOT) / path


def csv_rows(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


@pytest.mark.django_db
def test_a_csv_export_is_written_and_downloaded(published, lee, ann, otto) -> None:
    export = curated_export_request(
        sample=published.sample, rule=parse_rule(threshold=0.6), fmt="csv", user=lee
    )
    assert curated_export_run(export_id=export.pk) == "succeeded"
    export.refresh_from_db()
    assert export.status == "succeeded"
    assert export.file == f"exports/{export.pk}/curated.csv"
    assert export.started is not None
    assert export.finished >= export.started
    assert export.error == ""
    rows = export.manifest["counts"]["rows"]
    assert rows > 0
    assert export.done == export.total
    assert export.manifest["rule"]["threshold"] == 0.6
    assert media(export.file).is_file()
    assert media(f"exports/{export.pk}/curated.manifest.json").is_file()
    api = api_for(lee)
    response = api.get(f"/api/exports/{export.pk}/file/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment;")
    assert (
        f"sample-{published.sample.pk}-curated-{export.pk}.csv" in response["Content-Disposition"]
    )
    body = b"".join(response.streaming_content)
    assert body == media(export.file).read_bytes()
    assert len(csv_rows(body)) == rows
    manifest = api.get(f"/api/exports/{export.pk}/manifest/")
    assert manifest.status_code == 200
    assert manifest["Content-Disposition"].startswith("attachment;")
    assert manifest.json() == export.manifest
    # A browser's link (HTML first in Accept) downloads the same JSON, not the browsable API.
    browser_accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    clicked = api.get(f"/api/exports/{export.pk}/manifest/", HTTP_ACCEPT=browser_accept)
    assert clicked["Content-Type"] == "application/json"
    assert clicked.json() == export.manifest
    clicked = api.get(f"/api/exports/{export.pk}/file/", HTTP_ACCEPT=browser_accept)
    assert clicked["Content-Type"].startswith("text/csv")
    detail = api.get(f"/api/exports/{export.pk}/").json()
    assert detail["status"] == "succeeded"
    assert detail["percent"] == 100
    assert detail["download_url"] == f"http://testserver/api/exports/{export.pk}/file/"
    assert detail["manifest_url"] == f"http://testserver/api/exports/{export.pk}/manifest/"
    assert detail["manifest"] == export.manifest
    for user, code in ((ann, 403), (otto, 404)):
        for tail in ("file/", "manifest/"):
            assert api_for(user).get(f"/api/exports/{export.pk}/{tail}").status_code == code
    # Leads download it: the manifest names no folder of the server.
    assert "image_root" not in export.manifest
    assert str(settings.MEDIA_ROOT) not in json.dumps(export.manifest)
    assert "--out curated.csv" in export.manifest["command"]
    # A file gone from the disk answers 409, never a 500.
    media(export.file).unlink()
    assert api.get(f"/api/exports/{export.pk}/file/").status_code == 409


@pytest.mark.django_db(transaction=True)
def test_deleting_the_sample_deletes_its_export_files(small, lee) -> None:
    export = curated_export_request(
        sample=small.sample, rule=parse_rule(threshold=0.0, include_unvalidated=True), fmt="csv",
        user=lee,
    )  # fmt: skip
    assert curated_export_run(export_id=export.pk) == "succeeded"
    folder = media(f"exports/{export.pk}")
    assert folder.is_dir()
    small.sample.delete()
    assert not CuratedExport.objects.filter(pk=export.pk).exists()
    assert not folder.exists()


@pytest.mark.django_db
def test_an_imagefolder_export_is_one_zip(small, lee) -> None:
    for item in small.items:
        write_jpeg(Path(small.run.dataset.image_root) / item.image_path)
    rule = parse_rule(threshold=0.0, include_unvalidated=True)  # no verdicts: all unvalidated
    export = curated_export_request(sample=small.sample, rule=rule, fmt="imagefolder", user=lee)
    assert curated_export_run(export_id=export.pk) == "succeeded"
    export.refresh_from_db()
    assert export.file == f"exports/{export.pk}/curated-imagefolder.zip"
    folder = media(f"exports/{export.pk}")
    assert sorted(p.name for p in folder.iterdir()) == ["curated-imagefolder.zip"]
    with zipfile.ZipFile(media(export.file)) as archive:
        names = archive.namelist()
        assert all(name.startswith("curated-imagefolder/") for name in names)
        assert "curated-imagefolder/manifest.json" in names
        metadata = archive.read("curated-imagefolder/metadata.jsonl").decode().splitlines()
        manifest = json.loads(archive.read("curated-imagefolder/manifest.json"))
        images = [n for n in names if n.endswith(".jpg")]
        assert archive.read(images[0])[:2] == b"\xff\xd8"  # the image, not a link
    assert len(metadata) == len(images) == export.manifest["counts"]["rows"] == 12
    assert manifest["counts"] == export.manifest["counts"]
    response = api_for(lee).get(f"/api/exports/{export.pk}/file/")
    assert response["Content-Type"] == "application/zip"


@pytest.mark.django_db
def test_a_failure_is_recorded_and_the_worker_goes_on(small, lee, ada, monkeypatch) -> None:
    def broken(**kwargs):
        kwargs["out"].write_text("half a file")
        raise OSError("disk full at /srv/media")

    monkeypatch.setattr(curated_jobs, "export_write", broken)
    export = curated_export_request(
        sample=small.sample, rule=parse_rule(threshold=0.5), fmt="jsonl", user=lee
    )
    assert curated_export_run(export_id=export.pk) == "failed"
    export.refresh_from_db()
    assert export.status == "failed"
    assert export.error == "OSError: disk full at /srv/media"
    assert export.finished is not None
    assert export.file == ""
    assert not media(f"exports/{export.pk}").exists()  # nothing half-written stays
    assert api_for(ada).get(f"/api/exports/{export.pk}/").json()["error"] == export.error
    seen = api_for(lee).get(f"/api/exports/{export.pk}/").json()
    assert seen["status"] == "failed"
    assert "/srv" not in seen["error"]
    assert seen["download_url"] is None
    assert api_for(lee).get(f"/api/exports/{export.pk}/file/").status_code == 409
    assert curated_export_run(export_id=999_999) == "missing"


@pytest.mark.django_db
def test_a_redelivered_task_starts_again_and_overwrites(small, lee, monkeypatch) -> None:
    export = curated_export_request(
        sample=small.sample, rule=parse_rule(threshold=0.0, include_unvalidated=True), fmt="csv"
    )
    # A worker killed mid-export left it running, with a partial file and a stale count.
    CuratedExport.objects.filter(pk=export.pk).update(status="running", done=5)
    stale = media(f"exports/{export.pk}/curated.csv")
    stale.parent.mkdir(parents=True)
    stale.write_text("stale,partial\n")
    (stale.parent / "junk.tmp").write_text("x")
    assert curated_export_run(export_id=export.pk) == "succeeded"
    export.refresh_from_db()
    assert not (stale.parent / "junk.tmp").exists()
    assert len(csv_rows(stale.read_bytes())) == export.manifest["counts"]["rows"] == 12
    # Delivered again after it succeeded: nothing is redone.
    monkeypatch.setattr(curated_jobs, "export_write", lambda **kwargs: pytest.fail("rewritten"))
    assert curated_export_run(export_id=export.pk) == "succeeded"


@pytest.mark.django_db
def test_progress_is_saved_about_once_a_second(small, monkeypatch) -> None:
    def writer(*, out, progress, **kwargs):
        for done in range(1, 2001):
            progress(done, 2000)
        time.sleep(1.05)
        progress(2000, 2000)
        out.write_text("item\n")
        return {"counts": {"rows": 2000}}

    monkeypatch.setattr(curated_jobs, "export_write", writer)
    export = curated_export_request(sample=small.sample, rule=parse_rule(threshold=0.5), fmt="csv")
    with CaptureQueriesContext(connection) as queries:
        assert curated_export_run(export_id=export.pk) == "succeeded"
    updates = [
        q["sql"] for q in queries if q["sql"].startswith("UPDATE") and "curatedexport" in q["sql"]
    ]
    assert len(updates) == 4  # running, the first progress, one a second later, succeeded
    export.refresh_from_db()
    assert (export.done, export.total) == (2000, 2000)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_writes_the_export_asked_for_through_the_api(published, lee, start_worker) -> None:
    start_worker("default")
    api = api_for(lee)
    body = {"threshold": 0.6, "format": "jsonl"}
    response = api.post(f"/api/samples/{published.sample.pk}/exports/", body, format="json")
    assert response.status_code == 202
    export_id = response.json()["id"]
    deadline = time.monotonic() + 60
    while (detail := api.get(f"/api/exports/{export_id}/").json())["status"] in (
        "queued",
        "running",
    ):
        assert time.monotonic() < deadline, detail
        time.sleep(0.2)
    assert detail["status"] == "succeeded", detail
    assert detail["percent"] == 100
    download = api.get(f"/api/exports/{export_id}/file/")
    assert download.status_code == 200
    lines = b"".join(download.streaming_content).decode().splitlines()
    assert len(lines) == detail["manifest"]["counts"]["rows"] > 0
    first = json.loads(lines[0])
    assert {"external_id", "label", "probability", "label_precision"} <= set(first)
    assert detail["manifest"]["sample"]["id"] == published.sample.pk
