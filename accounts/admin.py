"""The admin for players. It never shows the password hash: the fields are explicit.

Moderators (accounts.view_user + accounts.suspend_user) can look players up and
suspend or reactivate them. Only holders of accounts.change_role (admins) can change
roles. Nobody adds or hard-deletes players here: sign-up and the soft delete keep the
ledger's references intact.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts import roles, selectors, services
from accounts.errors import AccountsError
from accounts.models import User


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("active", "Active"), ("suspended", "Suspended"), ("deleted", "Deleted")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> QuerySet[User]:
        if self.value() == "active":
            return queryset.filter(deleted_at__isnull=True, suspended_at__isnull=True)
        if self.value() == "suspended":
            return queryset.filter(suspended_at__isnull=False, deleted_at__isnull=True)
        if self.value() == "deleted":
            return queryset.filter(deleted_at__isnull=False)
        return queryset


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = ("handle", "email", "display_name", "role", "state", "date_joined", "last_login")
    list_filter = (StateFilter, "groups", "is_staff", "public_profile")
    search_fields = ("handle", "email", "display_name")
    ordering = ("-date_joined",)
    list_per_page = 50
    # Explicit: no password, no raw groups/permissions widgets.
    fields = (
        "handle",
        "email",
        "display_name",
        "public_profile",
        "time_zone",
        "role",
        "is_staff",
        "is_active",
        "date_joined",
        "last_login",
        "suspended_at",
        "suspension_reason",
        "deleted_at",
    )
    readonly_fields = (
        "handle",
        "role",
        "is_staff",
        "is_active",
        "date_joined",
        "last_login",
        "suspended_at",
        "suspension_reason",
        "deleted_at",
    )
    actions = ("suspend_players", "reactivate_players", "make_user", "make_moderator", "make_admin")

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description="role")
    def role(self, user: User) -> str:
        return selectors.user_role(user=user)

    @admin.display(description="state")
    def state(self, user: User) -> str:
        if user.deleted_at:
            return "deleted"
        if user.suspended_at:
            return "suspended"
        return "active"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        return False

    def has_suspend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.suspend_user")

    def has_change_role_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.change_role")

    def _each(self, request: HttpRequest, queryset: QuerySet[User], action, done: str) -> None:
        changed = 0
        for user in queryset:
            try:
                action(user)
            except AccountsError as error:
                self.message_user(request, f"@{user.handle}: {error}", messages.ERROR)
            else:
                changed += 1
        if changed:
            self.message_user(request, f"{changed} player(s) {done}.", messages.SUCCESS)

    @admin.action(description="Suspend selected players", permissions=["suspend"])
    def suspend_players(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        reason = f"Suspended from the admin by @{request.user.handle}"
        self._each(
            request,
            queryset,
            lambda user: services.user_suspend(user=user, reason=reason, by=request.user),
            "suspended",
        )

    @admin.action(description="Lift the suspension of selected players", permissions=["suspend"])
    def reactivate_players(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._each(
            request,
            queryset,
            lambda user: services.user_reactivate(user=user, by=request.user),
            "reactivated",
        )

    def _grant(self, request: HttpRequest, queryset: QuerySet[User], role: str) -> None:
        self._each(
            request,
            queryset,
            lambda user: services.role_grant(user=user, role=role, by=request.user),
            f"now have the {role} role",
        )

    @admin.action(description="Set role: user", permissions=["change_role"])
    def make_user(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._grant(request, queryset, roles.USER)

    @admin.action(description="Set role: moderator", permissions=["change_role"])
    def make_moderator(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._grant(request, queryset, roles.MODERATOR)

    @admin.action(description="Set role: admin", permissions=["change_role"])
    def make_admin(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._grant(request, queryset, roles.ADMIN)
