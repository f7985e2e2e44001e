"""The staff audit log: every moderator and admin action, and every refused attempt.

`audit_record` is called by the admin (and by any service acting for staff) inside the
same `transaction.atomic()` as the action it describes, so an action that rolls back
leaves no entry and an action that commits always has one. Refusals (a moderator
trying an admin-only page) are recorded by `AdminDeniedMiddleware`, in their own
transaction, because the request that was refused writes nothing else.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.http import HttpRequest, HttpResponse

from accounts.models import AuditEntry, AuditOutcome

logger = logging.getLogger(__name__)


def _target_facts(target: Any) -> tuple[str, str, str]:
    if target is None:
        return "", "", ""
    if isinstance(target, models.Model):
        return target._meta.label_lower, str(target.pk), str(target)[:200]
    return "", "", str(target)[:200]


def _jsonable(details: dict[str, Any] | None) -> dict[str, Any]:
    # Decimals and datetimes become strings the way Django's JSON encoder writes them.
    return json.loads(json.dumps(details or {}, cls=DjangoJSONEncoder))


def audit_record(
    *,
    actor: Any,
    action: str,
    target: Any = None,
    reason: str = "",
    details: dict[str, Any] | None = None,
    outcome: str = AuditOutcome.DONE,
    ip: str | None = None,
) -> AuditEntry:
    """Append one entry. `action` is "<thing>.<verb>" ("user.suspend", "stock.halt");
    `target` is the model instance acted on (or None, or a label for a site-wide
    action); `details` holds small JSON-able facts (amounts, before/after)."""
    target_type, target_id, target_label = _target_facts(target)
    actor_id = getattr(actor, "pk", None)
    entry = AuditEntry.objects.create(
        actor_id=actor_id,
        actor_handle=getattr(actor, "handle", "") or "",
        action=action[:60],
        outcome=outcome,
        target_type=target_type,
        target_id=target_id,
        target_label=target_label,
        reason=(reason or "").strip(),
        details=_jsonable(details),
        ip=ip or None,
    )
    logger.info(
        "audit: %s %s %s %s (%s)",
        entry.actor_handle or "system",
        action,
        target_label,
        outcome,
        entry.reason,
    )
    return entry


def request_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _admin_prefix() -> str:
    from django.urls import reverse

    return reverse("admin:index")


class AdminDeniedMiddleware:
    """Records every 403 the admin answers to a signed-in staff member.

    The admin refuses by raising PermissionDenied (a view-only user posting a change,
    a moderator opening an admin-only page); `process_exception` sees it before Django
    turns it into the 403 page, and the refusal lands in the audit log with the path.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        if not isinstance(exception, PermissionDenied):
            return None
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not user.is_staff:
            return None
        if not request.path.startswith(_admin_prefix()):
            return None
        try:
            audit_record(
                actor=user,
                action="admin.denied",
                target=request.path[:200],
                reason=str(exception) or "Not allowed for this role.",
                details={"method": request.method, "path": request.path},
                outcome=AuditOutcome.DENIED,
                ip=request_ip(request),
            )
        except Exception:
            # A refusal must stay a 403 even when the log cannot be written.
            logger.exception("could not record a refused admin request")
        return None
