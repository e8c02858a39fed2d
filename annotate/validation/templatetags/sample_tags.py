from django import template

from annotate.validation.views import run_samples_context

register = template.Library()


@register.simple_tag(takes_context=True)
def run_samples(context, run) -> dict:
    """`{% run_samples run as card %}`: the run's samples and whether the user may draw one.
    Lets `_run_samples.html` be included in the run page with only `run` in its context."""
    return run_samples_context(run=run, user=context["request"].user)
