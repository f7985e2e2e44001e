"""The admin for players and the audit log.

Players: the password hash is never shown (the fields are explicit, everywhere).
Moderators (accounts.view_user + accounts.suspend_user) look players up and suspend or
reactivate them with a reason; only holders of accounts.change_role (admins) change
roles, through the same service as `manage.py grant_role`. Nobody adds or hard-deletes
players here: sign-up and the soft delete keep the ledger's references intact.

The audit log is read-only, and only admins hold accounts.view_auditentry.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from accounts import selectors, services
from accounts.admin_forms import RoleForm, StaffAdmin, audit, reason_action, require_perm
from accounts.errors import AccountsError
from accounts.models import AuditEntry, User

USER_FIELDS = (
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


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("active", "Active"), ("suspended", "Suspended"), ("deleted", "Deleted")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> QuerySet[User]:
        # suspended_at and deleted_at are indexed; "active" walks user_joined_idx.
        if self.value() == "active":
            return queryset.filter(deleted_at__isnull=True, suspended_at__isnull=True)
        if self.value() == "suspended":
            return queryset.filter(suspended_at__isnull=False, deleted_at__isnull=True)
        if self.value() == "deleted":
            return queryset.filter(deleted_at__isnull=False)
        return queryset


class RoleFilter(admin.SimpleListFilter):
    """Roles by name (user / moderator / admin), not Django's raw group list."""

    title = "role"
    parameter_name = "role"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("moderator", "Moderator"), ("admin", "Admin"), ("staff", "Any staff role")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> QuerySet[User]:
        if self.value() in ("moderator", "admin"):
            return queryset.filter(groups__name=self.value())
        if self.value() == "staff":
            return queryset.filter(is_staff=True)
        return queryset


@admin.register(User)
class UserAdmin(StaffAdmin):
    list_display = ("handle", "email", "display_name", "role", "state", "date_joined", "last_login")
    list_filter = (StateFilter, RoleFilter, "public_profile")
    # Searches that an index answers with 100,000 players (get_search_results below).
    search_fields = ("handle",)
    search_help_text = "The start of a handle (@ optional), or a whole email address."
    ordering = ("-date_joined", "-id")
    # Explicit fields, here and in every form: never the password hash, never the raw
    # groups/permissions widgets (roles change through the role page).
    fields = USER_FIELDS
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
    actions = ("suspend_players", "reactivate_players", "change_role")
    change_form_template = "admin/accounts/user/change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        # One extra query for the page's roles, whatever the number of rows.
        return super().get_queryset(request).prefetch_related("groups")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[User], search_term: str
    ) -> tuple[QuerySet[User], bool]:
        """A whole email matches case-insensitively through the Lower(email) unique
        index; anything else is the start of a handle (handles are stored lowercased),
        through user_handle_prefix_idx. A contains-search would scan every row."""
        term = search_term.strip()
        if not term:
            return queryset, False
        if "@" in term.lstrip("@"):
            return queryset.alias(email_lower=Lower("email")).filter(
                email_lower=term.lower()
            ), False
        return queryset.filter(handle__startswith=term.lstrip("@").lower()), False

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

    # --- actions -------------------------------------------------------------------

    @admin.action(description="Suspend selected players…", permissions=["suspend"])
    def suspend_players(
        self, request: HttpRequest, queryset: QuerySet[User]
    ) -> HttpResponse | None:
        def perform(request: HttpRequest, user: User, data: dict[str, Any]) -> None:
            services.user_suspend(user=user, reason=data["reason"], by=request.user)
            audit(request, "user.suspend", user, data["reason"])

        return reason_action(
            self,
            request,
            queryset,
            title="Suspend players",
            perform=perform,
            done="player(s) suspended; their sessions ended",
            refusals=(AccountsError,),
            danger=True,
        )

    @admin.action(description="Reactivate selected players…", permissions=["suspend"])
    def reactivate_players(
        self, request: HttpRequest, queryset: QuerySet[User]
    ) -> HttpResponse | None:
        def perform(request: HttpRequest, user: User, data: dict[str, Any]) -> None:
            services.user_reactivate(user=user, by=request.user)
            audit(request, "user.reactivate", user, data["reason"])

        return reason_action(
            self,
            request,
            queryset,
            title="Reactivate players",
            perform=perform,
            done="player(s) reactivated",
            refusals=(AccountsError,),
        )

    @admin.action(description="Change the role of selected players…", permissions=["change_role"])
    def change_role(self, request: HttpRequest, queryset: QuerySet[User]) -> HttpResponse | None:
        return reason_action(
            self,
            request,
            queryset,
            title="Change role",
            perform=_role_change,
            done="player(s) given the new role",
            form_class=RoleForm,
            refusals=(AccountsError,),
        )

    # --- the role page of one player -------------------------------------------------

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<int:user_id>/role/",
                self.admin_site.admin_view(self.role_view),
                name="accounts_user_role",
            ),
            *super().get_urls(),
        ]

    def role_view(self, request: HttpRequest, user_id: int) -> HttpResponse:
        require_perm(request, "accounts.change_role")
        user = get_object_or_404(User, pk=user_id)
        form = RoleForm(request.POST or None, initial={"role": selectors.user_role(user=user)})
        if request.method == "POST" and form.is_valid():
            try:
                _role_change(request, user, form.cleaned_data)
            except AccountsError as error:
                form.add_error("role", str(error))
            else:
                role = selectors.user_role(user=user)
                messages.success(request, f"@{user.handle} now has the {role} role.")
                return redirect(reverse("admin:accounts_user_change", args=[user.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Change the role of @{user.handle}",
            "original": user,
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(
            request,
            "admin/accounts/user/role.html",
            context,
            status=400 if form.errors else 200,
        )


def _role_change(request: HttpRequest, user: User, data: dict[str, Any]) -> None:
    """The same service as `manage.py grant_role`, plus the audit entry."""
    before = selectors.user_role(user=user)
    services.role_grant(user=user, role=data["role"], by=request.user)
    audit(request, "user.role", user, data["reason"], before=before, after=data["role"])


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "actor_handle", "action", "outcome", "target_label", "reason")
    list_filter = ("outcome", "action", "target_type", ("created_at", admin.DateFieldListFilter))
    search_fields = ("actor_handle", "target_label", "=target_id", "reason")
    search_help_text = "Staff handle, target, target id (exact) or words of the reason."
    ordering = ("-created_at", "-id")
    show_full_result_count = False
    list_per_page = 100
    fields = (
        "created_at",
        "actor",
        "actor_handle",
        "action",
        "outcome",
        "target_type",
        "target_id",
        "target_label",
        "reason",
        "details",
        "ip",
    )
    readonly_fields = fields
    list_select_related = ("actor",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
