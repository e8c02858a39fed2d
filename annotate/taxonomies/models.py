from django.db import models

DEFAULT_TEMPLATE = "A photo of a {}."


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
    taxonomy = models.ForeignKey(Taxonomy, on_delete=models.CASCADE, related_name="labels")
    key = models.CharField(max_length=200)  # e.g. /b/bakery/shop
    name = models.CharField(max_length=200)  # e.g. bakery shop
    prompt = models.CharField(max_length=300, blank=True)  # override of the template
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["taxonomy", "position", "key"]
        constraints = [models.UniqueConstraint(fields=["taxonomy", "key"], name="unique_label_key")]

    def __str__(self) -> str:
        return self.name

    @property
    def effective_prompt(self) -> str:
        return self.prompt or self.taxonomy.prompt_template.format(self.name)
