from __future__ import annotations

import pytest
from django.core.management import call_command

from accounts import roles, selectors
from accounts.models import User

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_the_demo_accounts_and_is_idempotent(capsys):
    call_command("seed_demo", "--skip-market")
    first = capsys.readouterr().out
    assert "@demo (demo@bullpen.local) created" in first

    demo = User.objects.get(handle="demo")
    assert demo.check_password("bullpen-demo-2026") and demo.public_profile
    admin = User.objects.get(handle="admin")
    assert admin.check_password("bullpen-admin-2026") and admin.is_staff
    assert selectors.user_role(user=admin) == roles.ADMIN
    moderator = User.objects.get(handle="mod")
    assert moderator.check_password("bullpen-mod-2026")
    assert selectors.user_role(user=moderator) == roles.MODERATOR

    call_command("seed_demo", "--skip-market")
    second = capsys.readouterr().out
    assert second.count("already there") == 3
    assert User.objects.count() == 3


def test_seed_demo_restores_a_demo_role_that_was_changed(capsys):
    call_command("seed_demo", "--skip-market")
    call_command("grant_role", "mod", "user")
    call_command("seed_demo", "--skip-market")
    assert selectors.user_role(user=User.objects.get(handle="mod")) == roles.MODERATOR
