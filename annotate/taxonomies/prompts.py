"""Prompt text: templates, their check, and the article rule of the study's prompts.

- A template has exactly one plain `{}` (where the label name goes): no index, name,
  conversion or format spec, so formatting it with a label can neither fail nor read anything
  but the label.
- The default template `A photo of a {}.` takes "an" before a vowel ("A photo of an
  auditorium."); any other template is used as written.
- Labels whose key ends in `/outdoor` get the study's outdoor form: `/c/cathedral/outdoor`
  (name `cathedral outdoor`) -> "A photo of the outdoor of a cathedral."

No Django models here: the taxonomy models, the importer and the classifier all use it.
"""

import re
import string

DEFAULT_TEMPLATE = "A photo of a {}."
OUTDOOR_TEMPLATE = "A photo of the outdoor of {}."
OUTDOOR_SUFFIX = "/outdoor"


class TemplateError(ValueError):
    """A prompt template that is not text with exactly one plain `{}`."""


def template_check(template: str) -> str:
    """The template, stripped, if it has exactly one plain `{}`; else TemplateError."""
    template = (template or "").strip()
    try:
        fields = [
            (name, spec, conversion)
            for _, name, spec, conversion in string.Formatter().parse(template)
            if name is not None
        ]
    except ValueError:
        raise TemplateError(f"template {template!r} has a stray brace") from None
    if len(fields) != 1:
        raise TemplateError(
            f"template {template!r} must contain '{{}}' exactly once (where the label goes)"
        )
    if fields[0] != ("", "", None):
        raise TemplateError(
            f"template {template!r} must use a plain '{{}}' (no index, name, conversion or "
            f"format spec)"
        )
    return template


def article(noun: str) -> str:
    """ "an" before a vowel letter, else "a" (the rule the study's outdoor prompts follow)."""
    return "an" if noun[:1].lower() in "aeiou" else "a"


def template_format(template: str, name: str) -> str:
    """`template` with the label name in place of `{}`; the default template takes "an"
    before a vowel."""
    if template == DEFAULT_TEMPLATE:
        return f"A photo of {article(name)} {name}."
    return template.format(name)


def is_outdoor_key(key: str) -> bool:
    """A Places key with the outdoor qualifier (`/c/church/outdoor`)."""
    return key.startswith("/") and key.endswith(OUTDOOR_SUFFIX)


def outdoor_prompt(label_name: str) -> str:
    """`church outdoor` -> `A photo of the outdoor of a church.`"""
    scene = re.sub(r"\s+outdoor$", "", label_name).strip() or label_name
    return OUTDOOR_TEMPLATE.format(f"{article(scene)} {scene}")
