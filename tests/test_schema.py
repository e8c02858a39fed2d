"""The API matches its own OpenAPI schema. schemathesis (an outside API fuzzer) loads
`/api/schema/` with a lead's token and, with every check on, sends the requests it generates
in every phase (examples, coverage, fuzzing, stateful) to a live server, on a small dataset
with a run, a sample and verdicts. A server error, an undocumented status code or content
type, a response that contradicts the schema, a schema-valid request rejected or an invalid
one accepted fails the test."""

from collections import Counter

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from schemathesis.engine import events, from_schema

from annotate.datasets.access import membership_set
from annotate.datasets.models import Dataset, Role
from annotate.taxonomies.models import Label, Taxonomy
from annotate.validation.sampling import sample_draw
from annotate.validation.services import verdict_record
from tests.conftest import make_user
from tests.validation.conftest import build_run

# Examples per operation in the fuzzing phase: with the coverage phase's own cases, about
# 1,600 requests, well under a minute against the live server.
MAX_EXAMPLES = 12


def seed(dataset: Dataset, lee: User, ann: User, abe: User) -> None:
    """A run on the dataset, a sample of it and verdicts (some disagreeing); a second dataset
    where the lead is only an annotator, for the 403 answers."""
    taxonomy = Taxonomy.objects.create(name="places")
    Label.objects.bulk_create(
        Label(taxonomy=taxonomy, key=f"/l/label{i}", name=f"label {i}", position=i)
        for i in range(6)
    )
    run = build_run(dataset, taxonomy, [12, 10, 8, 6, 4])
    sample = sample_draw(run=run, classes=4, per_class=3, seed=7, overlap=1.0, created_by=lee)
    items = list(sample.items.order_by("position"))
    for n, item in enumerate(items[:8]):
        verdict_record(sample_item=item, annotator=ann, value="hit" if n % 3 else "miss")
        verdict_record(sample_item=item, annotator=abe, value="hit" if n % 2 else "miss")
    verdict_record(sample_item=items[0], annotator=lee, value="hit")
    other = Dataset.objects.create(name="other", image_root=dataset.image_root)
    membership_set(dataset=other, user=lee, role=Role.ANNOTATOR)
    build_run(other, taxonomy, [5, 3], prefix="other")


def config(token: str, base_url: str) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": 1,
            "base-url": base_url,
            # A fresh connection per request: on a kept-alive one, each answer of the test
            # server waits ~40 ms for a delayed TCP acknowledgement.
            "headers": {"Authorization": f"Token {token}", "Connection": "close"},
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True},
            "suppress-health-check": ["all"],
            "workers": 1,
            "operations": [
                {
                    # A well-formed username and password that match no user answer 400 (as
                    # schemathesis allows for the credential endpoints it recognises): the
                    # schema cannot say which users exist.
                    "include-path": "/api/auth/token/",
                    "checks": {
                        "positive_data_acceptance": {
                            "expected-statuses": ["2xx", "400", "401", "403", "404", "429"]
                        }
                    },
                }
            ],
        }
    )


def describe(recorder, case_id: str, check) -> str:
    """One line per failed check: the request, the answer and what was wrong with it."""
    case = recorder.cases[case_id].value
    interaction = recorder.interactions.get(case_id)
    response = interaction.response if interaction else None
    answer = f"{response.status_code} {response.content[:200]!r}" if response else "no response"
    body = "" if case.body.__class__.__name__ == "NotSet" else f" body={case.body!r:.200}"
    return (
        f"{check.name}: {case.method} {case.formatted_path} query={case.query}{body} -> "
        f"{answer}: {check.failure_info.failure.title}"
    )


def run_schemathesis(token: str, base_url: str) -> tuple[Counter, list[str]]:
    """Cases sent per phase, and a line per failed check."""
    schema = schemathesis.openapi.from_url(
        f"{base_url}/api/schema/?format=json",
        headers={"Authorization": f"Token {token}"},
        config=config(token, base_url),
    )
    cases: Counter = Counter()
    failures = []
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
            recorder = event.recorder
            cases[str(getattr(event, "phase", "fuzzing"))] += len(recorder.cases)
            for case_id, checks in recorder.checks.items():
                failures += [
                    describe(recorder, case_id, check)
                    for check in checks
                    if check.failure_info is not None
                ]
        elif isinstance(event, events.NonFatalError | events.FatalError):
            failures.append(f"error: {event}")
    return cases, failures


@pytest.mark.timeout(300)
def test_api_matches_its_schema(live_server, dataset: Dataset, lee, ann, abe) -> None:
    seed(dataset, lee, ann, abe)
    make_user("ada", Role.ADMIN)
    token = Token.objects.create(user=lee).key
    cases, failures = run_schemathesis(token, live_server.url)
    print(f"schemathesis: {cases.total()} cases {dict(cases)}, {len(failures)} failed checks")
    assert cases.total() > 1000  # every phase ran
    kinds = Counter(line.split(":")[0] for line in failures)
    assert failures == [], f"{kinds}\n" + "\n".join(failures)


def test_schema_is_valid_openapi_without_warnings(tmp_path) -> None:
    """drf-spectacular builds the schema with no warning and it validates as OpenAPI 3."""
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yml"))
    assert "/api/samples/{id}/verdicts/" in (tmp_path / "s.yml").read_text()
