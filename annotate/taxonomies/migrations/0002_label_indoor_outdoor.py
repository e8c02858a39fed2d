"""Labels keep their indoor/outdoor flag as data; the outdoor prompt form is built from the key.

Places labels imported with an indoor/outdoor file had the outdoor form stored as their own
prompt, also when their key has no `/outdoor` qualifier (`/b/beach` -> "A photo of the outdoor
of a beach."). Those stored prompts are cleared (the key ending in `/outdoor` now decides, when
prompts are built) and the flag they stood for is kept in `indoor_outdoor`. Indoor flags were
never stored, so they stay unknown until the taxonomy is imported again."""

from django.db import migrations, models

OUTDOOR_PREFIX = "A photo of the outdoor of "


def outdoor_prompts_to_flags(apps, schema_editor) -> None:
    Label = apps.get_model("taxonomies", "Label")
    stored = Label.objects.filter(key__startswith="/", prompt__startswith=OUTDOOR_PREFIX)
    stored.update(indoor_outdoor="outdoor", prompt="")


def flags_to_outdoor_prompts(apps, schema_editor) -> None:
    """Backwards: the stored form for flagged labels (the article rule as it was)."""
    Label = apps.get_model("taxonomies", "Label")
    for label in Label.objects.filter(indoor_outdoor="outdoor", prompt=""):
        scene = label.name.removesuffix(" outdoor").strip() or label.name
        article = "an" if scene[:1].lower() in "aeiou" else "a"
        label.prompt = f"{OUTDOOR_PREFIX}{article} {scene}."
        label.save(update_fields=["prompt"])


class Migration(migrations.Migration):
    dependencies = [
        ("taxonomies", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="label",
            name="indoor_outdoor",
            field=models.CharField(
                blank=True,
                choices=[("", "Unknown"), ("indoor", "Indoor"), ("outdoor", "Outdoor")],
                default="",
                max_length=7,
            ),
        ),
        migrations.RunPython(outdoor_prompts_to_flags, flags_to_outdoor_prompts),
    ]
