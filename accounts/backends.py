from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from accounts.models import User


class HandleOrEmailBackend(ModelBackend):
    """Log in with either the handle or the email. Deleted and suspended players cannot."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        if not username or password is None:
            return None
        identifier = username.strip()
        if "@" in identifier:
            user = User.objects.filter(email__iexact=identifier).first()
        else:
            user = User.objects.filter(handle=identifier.lower()).first()
        if user is None:
            # Spend the same time hashing so an attacker cannot tell who exists.
            User().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None

    def user_can_authenticate(self, user: Any) -> bool:
        return bool(getattr(user, "can_log_in", False))

    def get_user(self, user_id: int) -> User | None:
        user = User.objects.filter(pk=user_id).first()
        return user if user is not None and self.user_can_authenticate(user) else None


def axes_username(request: HttpRequest | None, credentials: dict[str, Any] | None) -> str:
    """The name django-axes counts failed log-ins under: always the handle.

    A player can log in by handle or by email; without this an attacker could get
    twice the attempts by alternating the two.
    """
    identifier = str((credentials or {}).get("username") or "").strip()
    if "@" in identifier:
        handle = (
            User.objects.filter(email__iexact=identifier).values_list("handle", flat=True).first()
        )
        return handle or identifier.lower()
    return identifier.lower()
