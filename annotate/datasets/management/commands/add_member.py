import json
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from annotate.datasets.access import membership_set
from annotate.datasets.models import Dataset, Role


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
        dataset = Dataset.objects.filter(name=options["dataset"]).first()
        if dataset is None and options["dataset"].isdigit():
            dataset = Dataset.objects.filter(pk=int(options["dataset"])).first()
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
                self.stderr.write(f"user {username!r} exists; --password ignored")
            membership = membership_set(dataset=dataset, user=user, role=options["role"])
        # With --json, stdout carries the JSON document alone; people read stderr.
        human = self.stderr if options["json"] else self.stdout
        human.write(
            f"{user.username} is now {membership.role} on {dataset.name}"
            + (" (user created)" if created else "")
        )
        if created and not options["password"]:
            human.write(f"generated password: {password}")
        if options["json"]:
            summary = {
                "dataset": dataset.name,
                "dataset_id": dataset.pk,
                "username": user.username,
                "role": membership.role,
                "created": created,
            }
            if created and not options["password"]:
                summary["password"] = password
            self.stdout.write(json.dumps(summary))
