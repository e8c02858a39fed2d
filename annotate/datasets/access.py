"""Who may do what on which dataset (docs/architecture.md#security).

Access is per dataset: a member has one role on it (annotator < lead < admin); members of the
global `admin` group and superusers are admins of every dataset. Every object a page, an API
endpoint or a command reads for a user comes from `fetch_for_user`, wrapped once per object
type in that type's selectors (`get_run_for_user`, `get_sample_for_user`, ...): one query returns
the object with the caller's role on its dataset, and an object of a dataset the caller is not a
member of answers 404, exactly like one that does not exist. `require_role` is the one way to ask
for more than membership (403); `admin_required` guards the pages of global admins.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any, TypeVar

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser, Group, User
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, Model, OuterRef, QuerySet, Subquery
from django.http import Http404, HttpRequest, HttpResponse

from annotate.datasets.models import ROLE_RANK, Dataset, Membership, Role, is_global_admin

M = TypeVar("M", bound=Model)
AnyUser = User | AnonymousUser

GROUP_NAMES = [Role.ADMIN, Role.LEAD, Role.ANNOTATOR]

__all__ = [
    "admin_required",
    "ensure_groups",
    "fetch_for_user",
    "highest_role",
    "is_global_admin",
    "membership_set",
    "require_role",
    "role_at_least",
    "role_context",
    "role_on",
    "roles_by_dataset",
]


def role_at_least(role: str | None, minimum: str) -> bool:
    return role is not None and ROLE_RANK[role] >= ROLE_RANK[minimum]


def require_role(role: str | None, minimum: str, message: str) -> None:
    """403 unless `role` (from a `get_*_for_user` fetch) is at least `minimum`."""
    if not role_at_least(role, minimum):
        raise PermissionDenied(message)


def _role_annotations(user: AnyUser, dataset_field: str) -> dict[str, Any]:
    """The caller's global-admin flag and membership role, as subqueries on any row that
    reaches a dataset through `dataset_field` ("pk" for datasets themselves)."""
    return {
        "_caller_is_admin": Exists(Group.objects.filter(user=user.pk, name=Role.ADMIN)),
        "_caller_role": Subquery(
            Membership.objects.filter(user=user.pk, dataset=OuterRef(dataset_field)).values("role")[
                :1
            ]
        ),
    }


def fetch_for_user(
    queryset: QuerySet[M],
    pk: object,
    user: AnyUser,
    *,
    dataset_field: str,
    minimum: str = Role.ANNOTATOR,
) -> tuple[M, str]:
    """`(object, caller's role)` for the row `pk` of `queryset`, in one query; 404 when it does
    not exist, its dataset is not the caller's, or the caller's role is below `minimum`."""
    not_found = Http404(f"No such {queryset.model._meta.verbose_name}")
    if not user.is_authenticated:
        raise not_found
    try:
        pk = int(pk)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise not_found from None
    obj = queryset.filter(pk=pk).annotate(**_role_annotations(user, dataset_field)).first()
    if obj is None:
        raise not_found
    role = Role.ADMIN if user.is_superuser or obj._caller_is_admin else obj._caller_role
    if not role_at_least(role, minimum):
        raise not_found
    return obj, role


def role_on(user: AnyUser, dataset: Dataset) -> str | None:
    """The user's role on `dataset`, or None for non-members (one query)."""
    try:
        return fetch_for_user(Dataset.objects.all(), dataset.pk, user, dataset_field="pk")[1]
    except Http404:
        return None


def roles_by_dataset(user: AnyUser) -> Mapping[int, str]:
    """{dataset id: the user's role} for every dataset they may see, in one query: for lists,
    where a fetch per row would be one query per row."""
    if is_global_admin(user):
        return defaultdict(lambda: Role.ADMIN)
    return dict(Membership.objects.filter(user=user.pk).values_list("dataset_id", "role"))


def highest_role(user: AnyUser) -> str | None:
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


def membership_set(*, dataset: Dataset, user: User, role: str) -> Membership:
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


def admin_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Pages for global admins only (the console): login first, then 403 for everybody else."""

    @wraps(view)
    @login_required
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not is_global_admin(request.user):
            raise PermissionDenied("Admins only")
        return view(request, *args, **kwargs)

    return wrapped


def role_context(request: HttpRequest) -> dict[str, str | None]:
    """Template context: `nav_role` picks the navigation links in base.html."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_role": None}
    return {"nav_role": highest_role(user)}
