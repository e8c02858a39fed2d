"""Console forms. File paths typed into the web console must lie inside SIEVE_IMAGE_ROOTS
(the bundled Places365 files excepted): an admin's browser must not read arbitrary server files.
"""

from pathlib import Path

from django import forms
from django.contrib.auth import get_user_model

from annotate.datasets.models import Dataset, Role
from annotate.datasets.paths import UnsafePath, image_roots, safe_path
from annotate.taxonomies.importers import PLACES365, PLACES365_INDOOR_OUTDOOR
from annotate.taxonomies.models import DEFAULT_TEMPLATE

BUNDLED = {"places365": PLACES365}
BUNDLED_INDOOR_OUTDOOR = {"places365": PLACES365_INDOOR_OUTDOOR}


def _server_file(value: str, bundled: dict[str, Path]) -> Path:
    value = value.strip()
    if value in bundled:
        return bundled[value]
    try:
        return safe_path(value, kind="file")
    except UnsafePath as exc:
        raise forms.ValidationError(str(exc)) from None


class DatasetImportForm(forms.Form):
    """`import_job_start` checks the folder (and again the captions file) and queues the job."""

    name = forms.SlugField(max_length=100, help_text="a new name, or an existing one to update")
    folder = forms.CharField(max_length=1000)
    captions = forms.CharField(
        max_length=1000,
        required=False,
        help_text="a CSV (filename,caption) or JSONL file inside SIEVE_IMAGE_ROOTS; empty: "
        "sidecar .txt files next to the images",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        roots = ", ".join(str(root) for root in image_roots()) or "none configured"
        self.fields["folder"].help_text = f"a folder inside SIEVE_IMAGE_ROOTS ({roots})"

    def clean_captions(self) -> Path | None:
        value = self.cleaned_data["captions"].strip()
        return _server_file(value, {}) if value else None


class TaxonomyImportForm(forms.Form):
    name = forms.SlugField(max_length=100)
    file = forms.CharField(
        max_length=1000,
        required=False,
        help_text="a file inside SIEVE_IMAGE_ROOTS, or 'places365' for the bundled list",
    )
    upload = forms.FileField(required=False, help_text="or upload the file")
    template = forms.CharField(max_length=200, initial=DEFAULT_TEMPLATE)
    indoor_outdoor = forms.CharField(
        label="Indoor/outdoor file",
        max_length=1000,
        required=False,
        help_text="optional: a file inside SIEVE_IMAGE_ROOTS, or 'places365'",
    )

    def clean_file(self) -> Path | None:
        value = self.cleaned_data["file"].strip()
        return _server_file(value, BUNDLED) if value else None

    def clean_indoor_outdoor(self) -> Path | None:
        value = self.cleaned_data["indoor_outdoor"].strip()
        return _server_file(value, BUNDLED_INDOOR_OUTDOOR) if value else None

    def clean(self) -> dict:
        data = super().clean()
        if not self.errors and bool(data.get("file")) == bool(data.get("upload")):
            raise forms.ValidationError("give either a file path or an upload (one of them)")
        return data


class MembershipForm(forms.Form):
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.all())
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices)

    def clean_username(self):
        username = self.cleaned_data["username"].strip()
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise forms.ValidationError(
                f"no user {username!r} (create users in the Django admin or with add_member)"
            )
        return user
