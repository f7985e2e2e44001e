"""What every staff admin shares: the reason form, admin actions that ask for a reason
on an intermediate page, and a ModelAdmin base that writes the audit log.

The market, portfolio and trading admins build on `StaffAdmin` and `reason_action`, so
every staff action, whatever the model, is confirmed the same way and audited once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from accounts import roles
from accounts.audit import audit_record, request_ip


class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=280,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Required. Kept in the audit log (and shown to the player where it applies).",
    )

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Give a reason.")
        return reason


class RoleForm(ReasonForm):
    role = forms.ChoiceField(choices=[(role, role.title()) for role in roles.ROLES])
    field_order = ["role", "reason"]


class ReviewForm(forms.Form):
    status = forms.ChoiceField(
        choices=[("reviewed", "Reviewed: a concern"), ("dismissed", "Dismissed: nothing wrong")]
    )
    note = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        help_text="Required: what you looked at and what you concluded.",
    )

    def clean_note(self) -> str:
        note = self.cleaned_data["note"].strip()
        if not note:
            raise forms.ValidationError("Write a note.")
        return note


# Performs the action on one object; raises a domain error to report a refusal.
Perform = Callable[[HttpRequest, Any, dict[str, Any]], None]


def reason_action(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    *,
    title: str,
    perform: Perform,
    done: str,
    form_class: type[forms.Form] = ReasonForm,
    refusals: tuple[type[Exception], ...] = (),
    danger: bool = False,
) -> HttpResponse | None:
    """An admin action in two steps: the first POST (from the changelist) shows a page
    with the selected objects and a form asking why; the second performs the action on
    each object in its own transaction (so one refusal does not undo the others) and
    returns to the changelist. A form with errors is shown again with a 400."""
    form = form_class(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        changed = 0
        for obj in queryset:
            try:
                with transaction.atomic():
                    perform(request, obj, form.cleaned_data)
            except refusals as error:
                modeladmin.message_user(request, f"{obj}: {error}", messages.ERROR)
            else:
                changed += 1
        if changed:
            modeladmin.message_user(request, f"{changed} {done}.", messages.SUCCESS)
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "objects": list(queryset[:100]),
        "count": queryset.count(),
        "form": form,
        "action": request.POST.get("action", ""),
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across", "0"),
        "opts": modeladmin.model._meta,
        "danger": danger,
    }
    return TemplateResponse(
        request, "admin/action_reason.html", context, status=400 if form.errors else 200
    )


def audit(request: HttpRequest, action: str, target: Any, reason: str = "", **details: Any) -> None:
    audit_record(
        actor=request.user,
        action=action,
        target=target,
        reason=reason,
        details=details,
        ip=request_ip(request),
    )


class StaffAdmin(admin.ModelAdmin):
    """A ModelAdmin whose every write is audited and whose refusals are 403s.

    - Django's own add / change / delete log entries are mirrored into the audit log,
      in the same transaction as the change (the admin wraps each in atomic()).
    - Posting an action that exists but that the user's role may not run is a 403
      (logged by accounts.audit.AdminDeniedMiddleware), not Django's silent
      "No action selected".
    """

    show_full_result_count = False
    list_per_page = 50

    def _audit_log(self, request: HttpRequest, obj: Model, verb: str, message: Any) -> None:
        audit(request, f"{obj._meta.model_name}.{verb}", obj, change=str(message or ""))

    def log_addition(self, request: HttpRequest, obj: Model, message: Any) -> Any:
        self._audit_log(request, obj, "add", message)
        return super().log_addition(request, obj, message)

    def log_change(self, request: HttpRequest, obj: Model, message: Any) -> Any:
        self._audit_log(request, obj, "change", message)
        return super().log_change(request, obj, message)

    def log_deletions(self, request: HttpRequest, queryset: Iterable[Model]) -> Any:
        for obj in queryset:
            self._audit_log(request, obj, "delete", "")
        return super().log_deletions(request, queryset)

    def response_action(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        try:
            index = int(request.POST.get("index", 0))
            name = request.POST.getlist("action")[index]
        except (ValueError, IndexError):
            name = ""
        every = {action_name for _, action_name, _ in self._get_base_actions()}
        if name in every and name not in self.get_actions(request):
            raise PermissionDenied(f"The action “{name}” is not allowed for your role.")
        return super().response_action(request, queryset)


def require_perm(request: HttpRequest, perm: str) -> None:
    """Raise a 403 (which the audit log records) unless the user holds `perm`."""
    if not request.user.has_perm(perm):
        raise PermissionDenied(f"Needs the {perm} permission.")
