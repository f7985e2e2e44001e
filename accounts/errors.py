"""The accounts domain errors. Each names the form field it belongs to, so a view can
show the message next to that field (or above the form when `field` is None)."""

from __future__ import annotations


class AccountsError(Exception):
    field: str | None = None

    def __init__(self, message: str | list[str], *, field: str | None = None) -> None:
        self.messages = [message] if isinstance(message, str) else list(message)
        if field is not None:
            self.field = field
        super().__init__(" ".join(self.messages))


class HandleInvalid(AccountsError):
    field = "handle"


class HandleTaken(AccountsError):
    field = "handle"


class EmailInvalid(AccountsError):
    field = "email"


class EmailTaken(AccountsError):
    field = "email"


class PasswordRejected(AccountsError):
    field = "password"


class TimeZoneUnknown(AccountsError):
    field = "time_zone"


class RoleUnknown(AccountsError):
    field = "role"


class AccountNotAllowed(AccountsError):
    """An action on an account that its state or the actor's permissions rule out."""
