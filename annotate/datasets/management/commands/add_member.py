import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from annotate.cli import CommandOutput
from annotate.datasets.access import membership_set
from annotate.datasets.models import Dataset, Role
from annotate.datasets.selectors import find_by_name_or_id


class Command(BaseCommand):
    help = "Give USERNAME a role on DATASET (creating the user with --create)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dataset", help="dataset name (or id)")
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--create", action="store_true", help="create the user if missing")
        parser.add_argument("--password", help="password for a created user (else generated)")
        parser.add_argument(
            "--json", action="store_true", help="print one JSON document (messages go to stderr)"
        )

    def handle(self, *args, **options) -> None:
        out = CommandOutput(self, as_json=options["json"])
        dataset = find_by_name_or_id(Dataset.objects.all(), options["dataset"])
        if dataset is None:
            raise CommandError(f"no dataset named {options['dataset']!r}")
        User = get_user_model()
        username = options["username"]
        created = False
        password = None
        with transaction.atomic():
            user = User.objects.filter(username=username).first()
            if user is None:
                if not options["create"]:
                    raise CommandError(f"no user {username!r} (add --create to create it)")
                password = options["password"] or secrets.token_urlsafe(12)
                user = User(username=username)
                try:
                    validate_password(password, user)
                except ValidationError as exc:
                    raise CommandError("password refused: " + " ".join(exc.messages)) from None
                user.set_password(password)
                user.save()
                created = True
            elif options["password"]:
                # Re-running a setup script must not reset a password someone changed since.
                out.warn(f"user {username!r} exists; --password ignored")
            membership = membership_set(dataset=dataset, user=user, role=options["role"])
        out.say(
            f"{user.username} is now {membership.role} on {dataset.name}"
            + (" (user created)" if created else "")
        )
        summary = {
            "dataset": dataset.name,
            "dataset_id": dataset.pk,
            "username": user.username,
            "role": membership.role,
            "created": created,
        }
        if created and not options["password"]:
            out.say(f"generated password: {password}")
            summary["password"] = password
        out.result(summary)
