from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts import roles, selectors, services
from accounts.models import User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def with_role(role: str, **fields) -> User:
    user = UserFactory(**fields)
    return services.role_grant(user=user, role=role)


def admin_models(response) -> set[str]:
    return {
        f"{app['app_label']}.{model['object_name'].lower()}"
        for app in response.context["app_list"]
        for model in app["models"]
    }


def test_the_role_groups_exist_with_their_named_permissions():
    assert set(Group.objects.values_list("name", flat=True)) >= set(roles.ROLES)
    moderator = Group.objects.get(name=roles.MODERATOR)
    codenames = set(moderator.permissions.values_list("content_type__app_label", "codename"))
    assert ("accounts", "suspend_user") in codenames
    assert ("accounts", "view_user") in codenames
    assert ("accounts", "change_role") not in codenames
    admin = Group.objects.get(name=roles.ADMIN)
    assert admin.permissions.count() == Permission.objects.count()


def test_the_sync_attaches_permissions_that_appear_later_and_skips_missing_ones():
    missing = roles.roles_sync()
    # Whatever is missing is reported, not an error; whatever exists is attached.
    moderator = Group.objects.get(name=roles.MODERATOR)
    attached = {
        f"{app}.{code}"
        for app, code in moderator.permissions.values_list("content_type__app_label", "codename")
    }
    assert attached | set(missing[roles.MODERATOR]) == set(roles.ROLE_PERMISSIONS[roles.MODERATOR])


def test_granting_a_role_sets_the_group_and_staff_status():
    user = with_role(roles.MODERATOR)
    assert selectors.user_role(user=user) == roles.MODERATOR
    assert user.is_staff and not user.is_superuser
    assert user.has_perm("accounts.suspend_user")
    services.role_grant(user=user, role=roles.USER)
    assert selectors.user_role(user=user) == roles.USER
    assert not user.is_staff
    assert not user.has_perm("accounts.suspend_user")
    assert [g.name for g in user.groups.all()] == [roles.USER]


def test_only_holders_of_change_role_can_grant_roles():
    moderator = with_role(roles.MODERATOR)
    target = UserFactory()
    with pytest.raises(services.errors.AccountNotAllowed):
        services.role_grant(user=target, role=roles.ADMIN, by=moderator)
    admin = with_role(roles.ADMIN)
    services.role_grant(user=target, role=roles.MODERATOR, by=admin)
    assert selectors.user_role(user=target) == roles.MODERATOR


class TestAdminMatrix:
    def test_a_plain_user_cannot_reach_the_admin(self, client):
        client.force_login(with_role(roles.USER))
        response = client.get("/admin/")
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
        assert client.get("/admin/accounts/user/").status_code == 302

    def test_a_moderator_sees_only_the_moderator_models_and_actions(self, client):
        moderator = with_role(roles.MODERATOR)
        client.force_login(moderator)
        index = client.get("/admin/")
        assert index.status_code == 200
        visible = admin_models(index)
        assert "accounts.user" in visible
        assert "auth.group" not in visible
        assert not any(name.startswith("axes.") for name in visible)
        assert client.get("/admin/auth/group/").status_code == 403

        changelist = client.get("/admin/accounts/user/")
        assert changelist.status_code == 200
        actions = {name for name, _ in changelist.context["action_form"].fields["action"].choices}
        assert {"suspend_players", "reactivate_players"} <= actions
        assert not actions & {"make_admin", "make_moderator", "make_user", "delete_selected"}

        # View-only: the change form cannot be saved.
        target = UserFactory(display_name="Before")
        response = client.post(
            f"/admin/accounts/user/{target.pk}/change/", {"display_name": "After"}
        )
        assert response.status_code == 403
        target.refresh_from_db()
        assert target.display_name == "Before"

    def test_a_moderator_suspends_from_the_admin(self, client):
        client.force_login(with_role(roles.MODERATOR))
        target = UserFactory()
        response = client.post(
            "/admin/accounts/user/",
            {
                "action": "suspend_players",
                "_selected_action": [target.pk],
                "apply": "1",
                "reason": "Spamming offers",
            },
        )
        assert response.status_code == 302
        target.refresh_from_db()
        assert target.suspended_at is not None
        assert target.suspension_reason == "Spamming offers"

    def test_an_admin_sees_everything_and_can_change_roles(self, client):
        admin = with_role(roles.ADMIN)
        client.force_login(admin)
        index = client.get("/admin/")
        visible = admin_models(index)
        assert {"accounts.user", "auth.group"} <= visible
        assert any(name.startswith("axes.") for name in visible)
        assert client.get("/admin/auth/group/").status_code == 200

        target = UserFactory()
        response = client.post(
            "/admin/accounts/user/",
            {
                "action": "change_role",
                "_selected_action": [target.pk],
                "apply": "1",
                "role": roles.MODERATOR,
                "reason": "Helps with moderation",
            },
        )
        assert response.status_code == 302
        assert selectors.user_role(user=target) == roles.MODERATOR
        assert User.objects.get(pk=target.pk).is_staff

    def test_the_user_admin_never_shows_the_password_hash(self, client):
        client.force_login(with_role(roles.ADMIN))
        target = UserFactory()
        page = client.get(f"/admin/accounts/user/{target.pk}/change/")
        assert page.status_code == 200
        assert b"argon2" not in page.content
        assert target.password.encode() not in page.content
        assert b'name="password"' not in page.content

    def test_the_user_admin_searches_by_handle_and_email(self, client):
        client.force_login(with_role(roles.ADMIN))
        UserFactory(handle="findme", email="zed@example.com")
        UserFactory(handle="other")
        by_handle = client.get("/admin/accounts/user/", {"q": "findme"})
        assert [u.handle for u in by_handle.context["cl"].result_list] == ["findme"]
        by_email = client.get("/admin/accounts/user/", {"q": "Zed@Example.com"})
        assert [u.handle for u in by_email.context["cl"].result_list] == ["findme"]


class TestGrantRoleCommand:
    def test_it_changes_the_role_and_reports_it(self, capsys):
        UserFactory(handle="alice")
        call_command("grant_role", "@Alice", "moderator")
        out = capsys.readouterr().out
        assert "@alice: user -> moderator" in out
        assert User.objects.get(handle="alice").is_staff

    def test_an_unknown_handle_is_a_clear_error(self):
        with pytest.raises(CommandError, match="No player has the handle 'ghost'"):
            call_command("grant_role", "ghost", "admin")

    def test_an_unknown_role_is_refused_by_the_parser(self):
        UserFactory(handle="alice")
        with pytest.raises(CommandError, match="invalid choice: 'king'"):
            call_command("grant_role", "alice", "king")
