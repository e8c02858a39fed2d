from pathlib import Path

from django import forms
from django.conf import settings

from annotate.datasets.models import Dataset
from annotate.taxonomies.models import Taxonomy
from classifier import catalog
from classifier.services import CHECKPOINT_SUFFIXES, ENSEMBLES, model_roots

DEMO_MODEL = "sieve-tiny"
DEMO_CHECKPOINT = "sieve-demo.pt"  # written by `seed_demo` into MEDIA_ROOT/models
MAX_CHECKPOINTS = 50  # a model folder may be a whole hub cache: list the first ones only
MAX_DEPTH = 2  # folders below a model root that are searched for checkpoints


def available_checkpoints() -> list[Path]:
    """Checkpoint files under SIEVE_MODEL_ROOTS (real paths, inside a root once symlinks are
    resolved), the demo checkpoint first, then by path."""
    roots = model_roots()
    found: set[Path] = set()
    for root in roots:
        for depth in range(MAX_DEPTH + 1):
            for path in sorted(root.glob("/".join(["*"] * (depth + 1)))):
                if len(found) >= MAX_CHECKPOINTS:
                    break
                if path.name.startswith(".") or path.suffix.lower() not in CHECKPOINT_SUFFIXES:
                    continue
                real = path.resolve()
                if real.is_file() and any(real.is_relative_to(r) for r in roots):
                    found.add(real)
    return sorted(found, key=lambda p: (p.name != DEMO_CHECKPOINT, str(p)))


def default_checkpoint(checkpoints: list[Path]) -> Path | None:
    """The demo model's checkpoint when `seed_demo` wrote it, else the first one found."""
    demo = (Path(settings.MEDIA_ROOT) / "models" / DEMO_CHECKPOINT).resolve()
    if demo in checkpoints:
        return demo
    return checkpoints[0] if checkpoints else None


def architecture_for(checkpoint: Path) -> str:
    """The architecture a checkpoint's file name starts with (`ViT-B-32-ft.pt`), the demo's
    for Sieve's own files, else ViT-B-32: only a guess for the form's initial value."""
    stem = checkpoint.stem.lower()
    if stem.startswith("sieve"):
        return DEMO_MODEL
    names = [a for a in catalog.known_architectures() if stem.startswith(a.lower())]
    return max(names, key=len) if names else "ViT-B-32"


class RunForm(forms.Form):
    """The console's "start a run" form; `run_create` does the real checks."""

    dataset = forms.ModelChoiceField(queryset=Dataset.objects.none())
    taxonomy = forms.ModelChoiceField(queryset=Taxonomy.objects.all())
    model = forms.CharField(
        initial="ViT-B-32",
        max_length=100,
        widget=forms.TextInput(attrs={"list": "model-choices", "autocomplete": "off"}),
        help_text=f"an open_clip architecture (ViT-B-32, ViT-L-14, …) or {DEMO_MODEL}, "
        f"the small demo model",
    )
    weights = forms.CharField(
        required=False,  # `run_create` refuses empty weights, with the other refusals at once
        max_length=1000,
        widget=forms.TextInput(attrs={"list": "weights-choices", "autocomplete": "off"}),
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
        self.checkpoints = available_checkpoints()
        self.architectures = catalog.known_architectures()
        found = len(self.checkpoints)
        found_note = (
            f"{found} found: pick one from the list"
            if found
            else "none found there yet; `seed_demo` writes the demo model's"
        )
        self.fields["weights"].help_text = (
            "a pretrained tag of the architecture (e.g. openai for ViT-B-32: downloaded from "
            "the model hub, so the workers need internet) or the path of a checkpoint file "
            f"inside SIEVE_MODEL_ROOTS ({found_note})"
        )
        default = default_checkpoint(self.checkpoints)
        if default is not None and not self.is_bound:
            self.initial.setdefault("weights", str(default))
            self.initial.setdefault("model", architecture_for(default))

    def clean_templates(self) -> list[str]:
        lines = self.cleaned_data["templates"].splitlines()
        return [line.strip() for line in lines if line.strip()]
