"""Who may do what. Global groups set the navigation; per-dataset membership sets access.

Every object a view or API endpoint touches is fetched through a helper here (or one built on
it), so scoping by membership is never forgotten: an object of another dataset answers 404.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Exists, OuterRef, Subquery
from django.http import Http404, HttpRequest

from annotate.datasets.models import ROLE_RANK, Dataset, Membership, Role

GROUP_NAMES = [Role.ADMIN, Role.LEAD, Role.ANNOTATOR]


def is_global_admin(user) -> bool:
    return bool(
        user.is_authenticated
        and (user.is_superuser or user.groups.filter(name=Role.ADMIN).exists())
    )


def role_on(user, dataset: Dataset) -> str | None:
    """The user's role on a dataset, or None when they are not a member (one query: the
    global admin group and the membership together)."""
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return Role.ADMIN
    row = (
        get_user_model()
        .objects.filter(pk=user.pk)
        .annotate(
            admin=Exists(Group.objects.filter(user=OuterRef("pk"), name=Role.ADMIN)),
            role=Subquery(
                Membership.objects.filter(user=OuterRef("pk"), dataset=dataset).values("role")[:1]
            ),
        )
        .values_list("admin", "role")
        .first()
    )
    if row is None:
        return None
    admin, role = row
    return Role.ADMIN if admin else role


def has_role(user, dataset: Dataset, minimum: str) -> bool:
    role = role_on(user, dataset)
    return role is not None and ROLE_RANK[role] >= ROLE_RANK[minimum]


def get_dataset_for_user(user, pk, minimum: str = Role.ANNOTATOR) -> Dataset:
    """The dataset if the user has at least `minimum` role on it; 404 otherwise."""
    try:
        dataset = Dataset.objects.get(pk=pk)
    except (Dataset.DoesNotExist, ValueError, TypeError):
        raise Http404("No such dataset") from None
    if not has_role(user, dataset, minimum):
        raise Http404("No such dataset")
    return dataset


def highest_role(user) -> str | None:
    """The user's highest role anywhere: drives navigation only, never access."""
    if not user.is_authenticated:
        return None
    if is_global_admin(user):
        return Role.ADMIN
    roles = set(user.groups.filter(name__in=GROUP_NAMES).values_list("name", flat=True))
    roles |= set(Membership.objects.filter(user=user).values_list("role", flat=True))
    if not roles:
        return None
    return max(roles, key=lambda r: ROLE_RANK[r])


def ensure_groups() -> None:
    for name in GROUP_NAMES:
        Group.objects.get_or_create(name=name)


def membership_set(*, dataset: Dataset, user, role: str) -> Membership:
    """Give `user` the `role` on `dataset` (replacing an earlier role).

    Lead and annotator also join the global group of that name (navigation only). The role
    admin on one dataset does NOT join the global `admin` group: that group makes a global
    admin, who sees every dataset and the console."""
    if role not in Role.values:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(Role.values)}")
    membership, _ = Membership.objects.update_or_create(
        dataset=dataset, user=user, defaults={"role": role}
    )
    if role != Role.ADMIN:
        group, _ = Group.objects.get_or_create(name=role)
        user.groups.add(group)
    return membership


def role_context(request: HttpRequest) -> dict:
    """Template context: `nav_role` picks the navigation links in base.html."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_role": None}
    return {"nav_role": highest_role(user)}
