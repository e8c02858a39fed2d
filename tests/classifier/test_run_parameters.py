"""Run parameters are checked when a run is created (POST /api/runs/, the console form):
checkpoints only from SIEVE_MODEL_ROOTS, known architectures and pretrained tags, templates
with exactly one plain {}. Nothing here needs torch: the web tier checks without it."""

from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from annotate.datasets.models import Item
from classifier.models import ClassificationRun

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    """The fixtures create five users; the production hasher costs ~0.3 s each."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin(ada) -> Client:
    client = Client()
    client.force_login(ada)  # a session like the login form's, without hashing a password
    return client


@pytest.fixture
def checkpoint(settings) -> Path:
    """A file in the default model root (MEDIA_ROOT/models)."""
    path = Path(settings.MEDIA_ROOT) / "models" / "mine.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"weights")
    return path


def start(client: Client, dataset, taxonomy, **fields):
    Item.objects.get_or_create(dataset=dataset, external_id="a.jpg", image_path="a.jpg")
    payload = {"dataset": dataset.pk, "taxonomy": taxonomy.name, "model": "sieve-tiny", **fields}
    return client.post("/api/runs/", payload, "application/json")


REFUSED = "Checkpoint not found in the model folders (SIEVE_MODEL_ROOTS)"


@pytest.mark.parametrize(
    "weights",
    ["/etc/passwd", "/proc/self/environ", "../..", "../../etc/passwd", "~/.ssh/id_rsa.pt",
     "/nowhere/model.pt", "models/../../../etc/hostname"],
)  # fmt: skip
def test_checkpoints_outside_the_model_roots_are_refused(
    admin, dataset, taxonomy, checkpoint, weights: str
) -> None:
    response = start(admin, dataset, taxonomy, weights=weights)
    assert response.status_code == 400, response.content
    assert REFUSED in str(response.json())
    assert not ClassificationRun.objects.exists()


def test_existing_and_missing_files_outside_get_the_same_answer(admin, dataset, taxonomy) -> None:
    """The answer must not tell whether a file exists outside the roots."""
    exists = start(admin, dataset, taxonomy, weights="/etc/hostname").json()
    missing = start(admin, dataset, taxonomy, weights="/etc/no-such-file").json()
    assert str(exists).replace("hostname", "X") == str(missing).replace("no-such-file", "X")


def test_symlink_in_a_model_root_leading_out_is_refused(
    admin, dataset, taxonomy, settings, tmp_path
) -> None:
    outside = tmp_path / "outside.pt"
    outside.write_bytes(b"weights")
    link = Path(settings.MEDIA_ROOT) / "models" / "link.pt"
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    response = start(admin, dataset, taxonomy, weights=str(link))
    assert response.status_code == 400
    assert REFUSED in str(response.json())


def test_checkpoint_inside_a_root_is_stored_as_its_real_path(
    admin, dataset, taxonomy, checkpoint, settings
) -> None:
    created = start(admin, dataset, taxonomy, weights=str(checkpoint))
    assert created.status_code == 201, created.content
    assert ClassificationRun.objects.get().weights == str(checkpoint.resolve())
    # A relative path is looked up in the roots.
    created = start(admin, dataset, taxonomy, weights="mine.pt")
    assert created.status_code == 201, created.content
    assert ClassificationRun.objects.first().weights == str(checkpoint.resolve())
    # Another root, from SIEVE_MODEL_ROOTS.
    other = Path(settings.MEDIA_ROOT).parent / "shared-models"
    other.mkdir()
    (other / "b.pt").write_bytes(b"weights")
    assert start(admin, dataset, taxonomy, weights=str(other / "b.pt")).status_code == 400
    settings.SIEVE_MODEL_ROOTS = [*settings.SIEVE_MODEL_ROOTS, other.resolve()]
    assert start(admin, dataset, taxonomy, weights=str(other / "b.pt")).status_code == 201


def test_architectures_and_pretrained_tags(admin, dataset, taxonomy) -> None:
    unknown = start(admin, dataset, taxonomy, model="ViT-Z-99")
    assert unknown.status_code == 400
    assert "Unknown architecture 'ViT-Z-99'" in str(unknown.json())
    bad_tag = start(admin, dataset, taxonomy, model="ViT-B-32", weights="not-a-tag")
    assert bad_tag.status_code == 400
    assert "'not-a-tag' is not a pretrained tag of ViT-B-32" in str(bad_tag.json())
    assert "laion2b_s34b_b79k" in str(bad_tag.json())  # the known tags are listed
    no_tags = start(admin, dataset, taxonomy, model="sieve-tiny", weights="openai")
    assert no_tags.status_code == 400
    assert "give a checkpoint path" in str(no_tags.json())
    ok = start(admin, dataset, taxonomy, model="ViT-B-32", weights="OpenAI")  # any case
    assert ok.status_code == 201, ok.content
    assert ClassificationRun.objects.count() == 1


EMPTY = "Give the weights"


def test_empty_weights_are_refused_everywhere(admin, dataset, taxonomy, checkpoint) -> None:
    """Empty weights used to mean a randomly initialised model: the API, the console form and
    `classify` refuse them, saying what to give instead."""
    for weights in (None, "", "   "):
        fields = {} if weights is None else {"weights": weights}
        response = start(admin, dataset, taxonomy, model="ViT-B-32", **fields)
        assert response.status_code == 400, response.content
        message = " ".join(response.json()["weights"])
        assert EMPTY in message
        assert "pretrained tag of ViT-B-32 (e.g. openai)" in message
        assert "SIEVE_MODEL_ROOTS" in message
    # sieve-tiny has no pretrained tags: only a checkpoint will do.
    message = " ".join(start(admin, dataset, taxonomy, weights="").json()["weights"])
    assert "a checkpoint file inside SIEVE_MODEL_ROOTS" in message
    assert "pretrained tag" not in message

    form = {"dataset": dataset.pk, "taxonomy": taxonomy.pk, "model": "sieve-tiny",
            "weights": "", "ensemble": "image", "w_img": 0.8, "w_txt": 0.2,
            "condition_threshold": 0.6}  # fmt: skip
    response = admin.post("/console/runs/start/", form)
    assert response.status_code == 400
    assert EMPTY in response.content.decode()

    with pytest.raises(CommandError, match=EMPTY):
        call_command("classify", dataset.name, "--taxonomy", taxonomy.name,
                     "--model", "sieve-tiny")  # fmt: skip
    assert not ClassificationRun.objects.exists()
    # The same requests with a checkpoint go through.
    assert start(admin, dataset, taxonomy, weights=str(checkpoint)).status_code == 201


@pytest.mark.parametrize(
    "template",
    ["{0}", "A photo of a {x}.", "A photo of a {:>10}.", "{}{}", "A {!r}.", "no field",
     "A {} {", "A {{}} photo."],
)  # fmt: skip
def test_templates_need_exactly_one_plain_field(
    admin, dataset, taxonomy, checkpoint, template
) -> None:
    templates = ["A photo of a {}.", template]
    response = start(admin, dataset, taxonomy, weights=str(checkpoint), templates=templates)
    assert response.status_code == 400, response.content
    assert "templates" in response.json() or "templates" in str(response.json())
    assert not ClassificationRun.objects.exists()


def test_good_templates_are_kept(admin, dataset, taxonomy, checkpoint) -> None:
    templates = ["A photo of a {}.", "A {} with {{braces}}.", "  an {}  "]
    response = start(admin, dataset, taxonomy, weights=str(checkpoint), templates=templates)
    assert response.status_code == 201, response.content
    assert ClassificationRun.objects.get().templates == [
        "A photo of a {}.", "A {} with {{braces}}.", "an {}",
    ]  # fmt: skip


def test_console_form_shows_the_same_refusals(admin, dataset, taxonomy) -> None:
    def post(**fields) -> str:
        data = {"dataset": dataset.pk, "taxonomy": taxonomy.pk, "model": "sieve-tiny",
                "weights": "", "ensemble": "image", "w_img": 0.8, "w_txt": 0.2,
                "condition_threshold": 0.6, **fields}  # fmt: skip
        response = admin.post("/console/runs/start/", data, HTTP_HX_REQUEST="true")
        return response.content.decode()

    assert "SIEVE_MODEL_ROOTS" in post(weights="/etc/passwd")
    assert "Unknown architecture" in post(model="ViT-Z-99")
    assert "exactly once" in post(templates="A {} and {}")
    assert "plain" in post(templates="A {:>10}.")
    assert not ClassificationRun.objects.exists()
