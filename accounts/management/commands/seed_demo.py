from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand

from accounts import roles, selectors, services
from accounts.models import User


@dataclass(frozen=True)
class DemoAccount:
    handle: str
    email: str
    password: str
    display_name: str
    role: str
    public_profile: bool = False


DEMO_ACCOUNTS = (
    DemoAccount("demo", "demo@bullpen.local", "bullpen-demo-2026", "Demo Player", roles.USER, True),
    DemoAccount("admin", "admin@bullpen.local", "bullpen-admin-2026", "Admin", roles.ADMIN),
    DemoAccount("mod", "mod@bullpen.local", "bullpen-mod-2026", "Moderator", roles.MODERATOR),
)


def demo_account_ensure(account: DemoAccount) -> tuple[User, bool]:
    """Create the account if missing (through sign-up, so it gets a portfolio) and make
    sure it has its role. An existing account keeps its password. Returns (user, created)."""
    user = selectors.user_by_handle(handle=account.handle)
    created = user is None
    if user is None:
        user = services.user_signup(
            handle=account.handle,
            email=account.email,
            password=account.password,
            display_name=account.display_name,
        )
        if account.public_profile:
            User.objects.filter(pk=user.pk).update(public_profile=True)
    if selectors.user_role(user=user) != account.role:
        services.role_grant(user=user, role=account.role)
    return user, created


class Command(BaseCommand):
    help = (
        "Create the demo player and staff accounts (idempotent), then the demo market "
        "if the seed_market command exists."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--skip-market", action="store_true", help="Only the accounts; do not call seed_market."
        )
        parser.add_argument(
            "--history-days",
            type=int,
            default=400,
            help="Days of generated daily history for the demo market (default 400).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        for account in DEMO_ACCOUNTS:
            user, created = demo_account_ensure(account)
            state = "created" if created else "already there"
            self.stdout.write(
                f"  {account.role:<9} @{user.handle} ({account.email}) {state}"
                + (f", password {account.password}" if created else "")
            )
        if options["skip_market"]:
            return
        commands = get_commands()
        if "seed_market" not in commands:
            self.stdout.write("  no seed_market command yet: market not seeded")
            return
        self.stdout.write("  seeding the demo market (seed_market)…")
        # A year and a bit of daily history so every chart range has something to show.
        call_command(
            "seed_market", days=options["history_days"], stdout=self.stdout, stderr=self.stderr
        )
        if "seed_demo_portfolio" in commands:
            self.stdout.write("  giving the demo player some holdings (seed_demo_portfolio)…")
            call_command("seed_demo_portfolio", stdout=self.stdout, stderr=self.stderr)
