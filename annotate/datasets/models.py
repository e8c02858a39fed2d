from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


class Role(models.TextChoices):
    ANNOTATOR = "annotator", "Annotator"
    LEAD = "lead", "Lead"
    ADMIN = "admin", "Admin"


# Higher rank includes the rights of the lower ones.
ROLE_RANK: dict[str, int] = {Role.ANNOTATOR: 1, Role.LEAD: 2, Role.ADMIN: 3}


def is_global_admin(user) -> bool:
    """Superusers and members of the `admin` group administer every dataset."""
    return bool(
        user.is_authenticated
        and (user.is_superuser or user.groups.filter(name=Role.ADMIN).exists())
    )


class DatasetQuerySet(models.QuerySet):
    def for_user(self, user) -> "DatasetQuerySet":
        """Datasets the user may see: all for global admins, else those they are a member of."""
        if not user.is_authenticated:
            return self.none()
        if is_global_admin(user):
            return self
        return self.filter(memberships__user=user).distinct()


class Dataset(models.Model):
    class Kind(models.TextChoices):
        IMAGES = "images", "Images with captions"
        ITR = "itr", "Image-text relation"

    name = models.SlugField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.IMAGES)
    # Absolute folder, always inside one of settings.SIEVE_IMAGE_ROOTS.
    image_root = models.CharField(max_length=1000, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = DatasetQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.ANNOTATOR)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dataset", "user"], name="unique_membership")
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.role} on {self.dataset}"


class Item(models.Model):
    class Status(models.TextChoices):
        OK = "ok", "OK"
        UNREADABLE = "unreadable", "Unreadable"
        MISSING = "missing", "No image"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="items")
    # Folder imports: the image path relative to the folder; ITR: the tweet id.
    external_id = models.CharField(max_length=500)
    # Relative to dataset.image_root; empty when the item has no image.
    image_path = models.CharField(max_length=1000, blank=True)
    caption = models.TextField(blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OK)
    status_reason = models.CharField(max_length=500, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    image_format = models.CharField(max_length=20, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "external_id"], name="unique_item_id")
        ]

    def __str__(self) -> str:
        return f"{self.dataset.name}:{self.external_id}"


class ImportJob(models.Model):
    """A dataset import queued from the console and run by a worker on queue `default`
    (docs/architecture.md#import-jobs). The worker writes its progress here; the console
    polls it."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    ACTIVE = (Status.QUEUED, Status.RUNNING)
    # An active job without a sign of life for this long has most likely lost its worker (a
    # killed worker's job is redelivered only after the broker's visibility timeout, and the
    # embedded filesystem broker never redelivers): it no longer blocks a new import.
    STALLED_AFTER = timedelta(minutes=15)

    dataset_name = models.SlugField(max_length=100)
    folder = models.CharField(max_length=1000)  # the real path, inside SIEVE_IMAGE_ROOTS
    captions = models.CharField(max_length=1000, blank=True)  # empty: sidecar .txt files
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    # Image headers read so far, of `total` images (null until the folder has been scanned).
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(null=True, blank=True)
    created_items = models.PositiveIntegerField(default=0)
    updated_items = models.PositiveIntegerField(default=0)
    unreadable_items = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)  # ImportResult.as_dict() + "summary"
    dataset = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.SET_NULL, related_name="import_jobs"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    attempts = models.PositiveSmallIntegerField(default=0)  # > 1: redelivered after a crash
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True)  # the last progress write

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["dataset_name", "status"], name="importjob_name_status")]

    def __str__(self) -> str:
        return f"import of {self.dataset_name} ({self.status})"

    @property
    def stalled(self) -> bool:
        last = self.heartbeat or self.created
        return self.status in self.ACTIVE and timezone.now() - last > self.STALLED_AFTER

    @property
    def percent(self) -> float:
        if self.status == self.Status.SUCCEEDED:
            return 100.0
        return 100.0 * self.done / self.total if self.total else 0.0
