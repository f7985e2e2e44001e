from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import roles, selectors, services
from accounts.errors import AccountsError


class Command(BaseCommand):
    help = (
        "Give a player exactly one role (user, moderator or admin). "
        "Moderators and admins become staff; a user stops being staff."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("handle", type=str, help="The player's handle, with or without @.")
        parser.add_argument("role", type=str, choices=roles.ROLES, help="The role to give.")

    def handle(self, *args: Any, **options: Any) -> None:
        user = selectors.user_by_handle(handle=options["handle"])
        if user is None:
            raise CommandError(f"No player has the handle {options['handle']!r}.")
        before = selectors.user_role(user=user)
        try:
            services.role_grant(user=user, role=options["role"])
        except AccountsError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            self.style.SUCCESS(f"@{user.handle}: {before} -> {options['role']}")
            + (" (staff)" if user.is_staff else "")
        )
