"""Reads about accounts used in more than one place."""

from __future__ import annotations

from django.utils import timezone

from accounts import roles
from accounts.models import User, UserSession


def user_role(*, user: User) -> str:
    """The user's role: the highest of their role groups ("user" when none)."""
    names = {group.name for group in user.groups.all()}
    return next((role for role in roles.ROLES if role in names), roles.USER)


def user_sessions(*, user: User) -> list[UserSession]:
    """The player's live sessions, most recently active first."""
    return list(
        UserSession.objects.filter(user=user, session__expire_date__gt=timezone.now()).order_by(
            "-last_seen_at"
        )
    )


def user_by_handle(*, handle: str) -> User | None:
    return User.objects.filter(handle=(handle or "").strip().lstrip("@").lower()).first()
