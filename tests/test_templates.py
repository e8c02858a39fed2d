"""Templates name their links: every internal URL in a URL attribute comes from `{% url %}`,
`{% static %}` or a URL the view computed, so moving a route never leaves a dead link behind."""

import re
from pathlib import Path

from django.conf import settings

# Attributes whose value is a URL, htmx's request attributes and the data- attributes that hand
# URLs to the page scripts included.
URL_ATTRIBUTE = re.compile(
    r"""\s(?P<name>href|src|action|formaction|poster
        |hx-(?:get|post|put|patch|delete|push-url|replace-url)
        |data-[\w-]*(?:url|href))
        \s*=\s*(?P<quote>["'])(?P<value>.*?)(?P=quote)""",
    re.VERBOSE | re.DOTALL,
)
TEMPLATE_CODE = re.compile(r"\{%.*?%\}|\{\{.*?\}\}", re.DOTALL)


def literal_paths(html: str) -> list[str]:
    """The URL attributes of `html` that spell out a path instead of naming it.

    What is left of a value once its template tags and variables are removed must be nothing,
    a query string or fragment of the URL before it (`{% url 'x' pk %}?format=csv`, `?page=2`,
    `#top`), or an external https link.
    """
    found = []
    for match in URL_ATTRIBUTE.finditer(html):
        rest = TEMPLATE_CODE.sub("", match["value"]).strip()
        if rest == "" or rest[0] in "?#" or rest.startswith("https://"):
            continue
        found.append(f'{match["name"]}="{match["value"]}"')
    return found


def test_the_check_finds_literal_paths() -> None:
    bad = (
        '<a href="/runs/{{ run.pk }}/">run</a>'
        '<form action="/console/runs/start/" hx-post="runs/start/"></form>'
        '<div data-next-url="/samples/1/"></div><img src="/static/x.png">'
    )
    assert len(literal_paths(bad)) == 5
    good = (
        "<a href=\"{% url 'run-detail' run.pk %}\">run</a>"
        "<a href=\"{% url 'api-sample-verdicts' sample.pk %}?format=csv\">csv</a>"
        '<a href="?{% if status %}status={{ status }}&amp;{% endif %}page=2">next</a>'
        "<a href=\"#top\">top</a><a href='https://example.org/x'>docs</a>"
        '<img src="{% static \'favicon.svg\' %}"><img src="{{ item.image_url }}">'
    )
    assert literal_paths(good) == []


def test_no_template_spells_out_an_internal_path() -> None:
    roots = [Path(d) for d in settings.TEMPLATES[0]["DIRS"]]
    templates = sorted(p for root in roots for p in root.rglob("*.html"))
    assert templates, "no templates found"
    offenders = {
        str(path): paths for path in templates if (paths := literal_paths(path.read_text()))
    }
    assert offenders == {}
