from django import forms

from annotate.datasets.models import Dataset
from annotate.taxonomies.models import Taxonomy
from classifier.services import ENSEMBLES


class RunForm(forms.Form):
    """The console's "start a run" form; `run_create` does the real checks."""

    dataset = forms.ModelChoiceField(queryset=Dataset.objects.none())
    taxonomy = forms.ModelChoiceField(queryset=Taxonomy.objects.all())
    model = forms.CharField(initial="ViT-B-32", max_length=100)
    weights = forms.CharField(
        required=False,
        max_length=1000,
        help_text="pretrained tag, or a checkpoint path inside SIEVE_MODEL_ROOTS",
    )
    ensemble = forms.ChoiceField(choices=[(e, e) for e in ENSEMBLES], initial="image")
    w_img = forms.FloatField(initial=0.8, min_value=0, max_value=1, label="w_img")
    w_txt = forms.FloatField(initial=0.2, min_value=0, max_value=1, label="w_txt")
    condition_threshold = forms.FloatField(initial=0.6, min_value=0, max_value=1, label="τ")
    templates = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}),
        help_text="optional prompt templates, each with exactly one {}, one per line (averaged)",
    )  # fmt: skip
    name = forms.CharField(required=False, max_length=200)

    def __init__(self, *args, user=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["dataset"].queryset = Dataset.objects.for_user(user)

    def clean_templates(self) -> list[str]:
        lines = self.cleaned_data["templates"].splitlines()
        return [line.strip() for line in lines if line.strip()]
