from collections.abc import Sequence

from django.db import models

from annotate.taxonomies.prompts import (
    DEFAULT_TEMPLATE,
    is_outdoor_key,
    outdoor_prompt,
    template_format,
)

__all__ = ["DEFAULT_TEMPLATE", "Label", "Taxonomy"]


class Taxonomy(models.Model):
    name = models.SlugField(max_length=100, unique=True)
    # Used for labels without their own prompt; `{}` is replaced by the label name.
    prompt_template = models.CharField(max_length=200, default=DEFAULT_TEMPLATE)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "taxonomies"

    def __str__(self) -> str:
        return self.name


class Label(models.Model):
    class Setting(models.TextChoices):
        UNKNOWN = "", "Unknown"
        INDOOR = "indoor", "Indoor"
        OUTDOOR = "outdoor", "Outdoor"

    taxonomy = models.ForeignKey(Taxonomy, on_delete=models.CASCADE, related_name="labels")
    key = models.CharField(max_length=200)  # e.g. /b/bakery/shop
    name = models.CharField(max_length=200)  # e.g. bakery shop
    prompt = models.CharField(max_length=300, blank=True)  # the label's own prompt, if any
    position = models.PositiveIntegerField(default=0)
    # From the indoor/outdoor file, for filters; the prompt does not depend on it.
    indoor_outdoor = models.CharField(
        max_length=7, choices=Setting.choices, default=Setting.UNKNOWN, blank=True
    )

    class Meta:
        ordering = ["taxonomy", "position", "key"]
        constraints = [models.UniqueConstraint(fields=["taxonomy", "key"], name="unique_label_key")]

    def __str__(self) -> str:
        return self.name

    def prompts(self, templates: Sequence[str] = ()) -> list[str]:
        """The prompts the model sees for this label (their embeddings are averaged): its own
        prompt; else, for a key ending in `/outdoor`, the study's outdoor form; else the label
        name in each template (a run's templates, else the taxonomy's)."""
        if self.prompt:
            return [self.prompt]
        if is_outdoor_key(self.key):
            return [outdoor_prompt(self.name)]
        chosen = list(templates) or [self.taxonomy.prompt_template]
        return [template_format(template, self.name) for template in chosen]

    @property
    def effective_prompt(self) -> str:
        """The prompt with the taxonomy's template (no run templates)."""
        return self.prompts()[0]
