"""Roles: the single source of truth.

A role is a Django group holding named permissions. This mapping says which; the data
migration and a post_migrate handler (accounts.apps) keep the groups in line with it.
Permissions of apps that are not migrated yet are skipped and attached on a later
migrate, so the mapping can name permissions before their app exists.

Decision: admins are not `is_superuser`. The admin role holds every permission in the
database (ALL_PERMISSIONS), re-synced after each migrate so new models are covered.
`createsuperuser` remains the break-glass account for operators.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

USER = "user"
MODERATOR = "moderator"
ADMIN = "admin"

ALL_PERMISSIONS = "*"

ROLE_PERMISSIONS: dict[str, tuple[str, ...] | str] = {
    USER: (),
    MODERATOR: (
        "accounts.view_user",
        "accounts.suspend_user",
        "market.view_stock",
        "market.halt_stock",
        "market.view_marketevent",
        "market.add_marketevent",
        "market.publish_event",
        "trading.view_order",
        "trading.view_tradeoffer",
        "trading.cancel_for_player",
        "trading.review_collusion",
        "trading.view_collusionflag",
        "portfolio.view_portfolio",
    ),
    ADMIN: ALL_PERMISSIONS,
}

# Highest first: a user in several groups counts as the highest.
ROLES: tuple[str, ...] = (ADMIN, MODERATOR, USER)
STAFF_ROLES = frozenset({MODERATOR, ADMIN})

# Permissions named by the roles that other apps must declare on their models
# (Meta.permissions). Listed here so the owners of those apps can see what is expected.
CUSTOM_PERMISSIONS_ELSEWHERE = {
    "market.halt_stock": "Can halt and resume trading in a stock",
    "market.publish_event": "Can publish a market event",
    "market.delist_stock": "Can list and delist stocks (admins)",
    "portfolio.adjust_cash": "Can adjust a player's cash",
    "trading.cancel_for_player": "Can cancel a player's orders and offers",
    "trading.review_collusion": "Can review trades between players for collusion",
}


def _split(name: str) -> tuple[str, str]:
    app_label, codename = name.split(".", 1)
    return app_label, codename


def roles_sync(*, group_model: Any = None, permission_model: Any = None) -> dict[str, list[str]]:
    """Create the role groups and give each exactly its permissions.

    Tolerant: a named permission that does not exist yet is reported, not an error.
    Takes the models as arguments so the data migration can pass historical ones.
    Returns the missing permissions per role.
    """
    if group_model is None or permission_model is None:
        from django.contrib.auth.models import Group, Permission

        group_model, permission_model = Group, Permission

    every = permission_model.objects.select_related("content_type")
    by_name = {f"{p.content_type.app_label}.{p.codename}": p.pk for p in every}
    missing: dict[str, list[str]] = {}
    for role, wanted in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role)
        if wanted == ALL_PERMISSIONS:
            ids = set(by_name.values())
        else:
            ids = {by_name[name] for name in wanted if name in by_name}
            missing[role] = [name for name in wanted if name not in by_name]
        current = set(group.permissions.values_list("pk", flat=True))
        if current != ids:
            group.permissions.set(ids)
    return missing


def role_permissions(role: str) -> Iterable[str]:
    wanted = ROLE_PERMISSIONS[role]
    return () if wanted == ALL_PERMISSIONS else wanted
