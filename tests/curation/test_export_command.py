"""`manage.py export_curated`: the manifest as the one JSON document on stdout with --json,
the summary and progress bar for people, its defaults and its errors."""

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from annotate.validation.models import Sample
from tests.conftest import ROOT, child_env
from tests.curation.builders import Curated, build_curated, expected_rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def built(dataset, ann) -> Curated:
    return build_curated(dataset, ann)


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("export_curated", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_json_is_the_manifest(built: Curated, tmp_path: Path) -> None:
    target = tmp_path / "c.jsonl"
    stdout, stderr = run(str(built.sample.pk), "--threshold", "0.5", "--format", "jsonl",
                         "--out", str(target), "--json")  # fmt: skip
    manifest = json.loads(stdout)
    assert manifest == json.loads((tmp_path / "c.manifest.json").read_text())
    assert manifest["counts"]["rows"] == 10
    lines = target.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == expected_rows(built)
    assert "Wrote 10 rows" in stderr
    assert "2 corrected, 1 rejected" in stderr
    assert "11/11" in stderr  # the progress bar


def test_summary_and_default_out(built: Curated, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    stdout, _ = run(str(built.sample.pk), "--target-precision", "0.2", "--include-unvalidated")
    name = f"curated-sample{built.sample.pk}.csv"
    assert (tmp_path / name).exists()
    assert (tmp_path / f"curated-sample{built.sample.pk}.manifest.json").exists()
    assert f"rows to {name} (csv)" in stdout
    assert "unvalidated included." in stdout
    run(str(built.sample.pk), "--threshold", "0.5", "--format", "imagefolder")
    assert (tmp_path / f"curated-sample{built.sample.pk}" / "metadata.jsonl").exists()


def test_reproduces_from_the_manifest_command(built: Curated, tmp_path: Path) -> None:
    target = tmp_path / "a.csv"
    first = json.loads(run(str(built.sample.pk), "--threshold", "0.5", "--out", str(target),
                           "--exclude-suspects", "2", "--json")[0])  # fmt: skip
    args = first["command"].split()[3:]  # after "python manage.py export_curated"
    assert args == [str(built.sample.pk), "--threshold", "0.5", "--format", "csv", "--out",
                    str(target), "--exclude-suspects", "2"]  # fmt: skip
    before = target.read_bytes()
    again = json.loads(run(*args, "--json")[0])
    assert target.read_bytes() == before
    assert again["counts"] == first["counts"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["999999", "--threshold", "0.5"], "No sample 999999."),
        (["{s}", "--threshold", "1.5"], "threshold must be a number between 0 and 1."),
        (["{s}", "--target-precision", "x"], "target_precision must be a number"),
        (["{s}", "--threshold", "0.5", "--exclude-suspects", "0.5"], "from 1 to 100,000"),
        (["{s}", "--threshold", "0.5", "--exclude-duplicates"], "no finished near-duplicate"),
        (["{s}", "--threshold", "0.5", "--threshold", "0.6", "--target-precision", "0.9"],
         "not allowed with argument"),
    ],
)  # fmt: skip
def test_errors(built: Curated, tmp_path: Path, monkeypatch, args, message) -> None:
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    with pytest.raises(CommandError, match=message):
        run(*[a.format(s=built.sample.pk) for a in args])
    assert list(here.iterdir()) == []  # nothing written


def test_targeted_sample_and_full_directory(built: Curated, tmp_path: Path) -> None:
    Sample.objects.filter(pk=built.sample.pk).update(strategy=Sample.Strategy.SUSPECTS)
    with pytest.raises(CommandError, match="This sample is targeted"):
        run(str(built.sample.pk), "--threshold", "0.5")
    Sample.objects.filter(pk=built.sample.pk).update(strategy=Sample.Strategy.BALANCED)
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "x").write_text("x")
    with pytest.raises(CommandError, match="not empty"):
        run(str(built.sample.pk), "--threshold", "0.5", "--format", "imagefolder", "--out",
            str(tmp_path / "dir"))  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_a_child_process_prints_only_json_on_stdout(dataset, ann, tmp_path: Path) -> None:
    built = build_curated(dataset, ann)
    target = tmp_path / "child"
    result = subprocess.run(
        [sys.executable, "manage.py", "export_curated", str(built.sample.pk), "--threshold",
         "0.5", "--format", "imagefolder", "--out", str(target), "--json"],
        cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    manifest = json.loads(result.stdout)
    assert manifest["counts"]["rows"] == 10
    assert manifest["format"] == "imagefolder"
    assert (target / "manifest.json").exists()
    assert "11/11" in result.stderr
    assert "Wrote 10 rows" in result.stderr
