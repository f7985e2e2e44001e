"""Writes for accounts: sign-up, profile, soft delete, suspension, roles and sessions.

Every function is keyword-only, validates first, writes inside `transaction.atomic()`
and raises an accounts.errors.AccountsError naming the field at fault.
"""

from __future__ import annotations

import logging
import zoneinfo
from datetime import timedelta

from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import errors, roles
from accounts.models import User, UserSession, handle_validator
from config.metrics import SIGNUPS
from portfolio.services import portfolio_open

logger = logging.getLogger(__name__)

# How often a session's "last active" is written: at most once a minute per session.
SESSION_TOUCH_INTERVAL = timedelta(minutes=1)


def _clean_handle(handle: str) -> str:
    cleaned = (handle or "").strip().lower()
    try:
        handle_validator(cleaned)
    except ValidationError as error:
        raise errors.HandleInvalid(error.messages) from error
    return cleaned


def _clean_email(email: str) -> str:
    cleaned = User.objects.normalize_email((email or "").strip())
    try:
        validate_email(cleaned)
    except ValidationError as error:
        raise errors.EmailInvalid("Enter a valid email address.") from error
    return cleaned


def _clean_time_zone(time_zone: str) -> str:
    if time_zone not in zoneinfo.available_timezones():
        raise errors.TimeZoneUnknown("Choose a time zone from the list.")
    return time_zone


def _ensure_email_free(email: str, *, except_user: User | None = None) -> None:
    taken = User.objects.filter(email__iexact=email)
    if except_user is not None:
        taken = taken.exclude(pk=except_user.pk)
    if taken.exists():
        raise errors.EmailTaken("That email is already registered.")


def _error_for_unique_violation(error: IntegrityError) -> errors.AccountsError | None:
    """Map a unique-constraint violation to the field it is about.

    The checks before the insert catch the usual case; this catches the race where two
    sign-ups (or email changes) pass them at the same moment and the database's
    case-insensitive unique constraints decide.
    """
    diag = getattr(error.__cause__, "diag", None)
    constraint = (getattr(diag, "constraint_name", None) or "").lower()
    if "handle" in constraint:
        return errors.HandleTaken("That handle is taken.")
    if "email" in constraint:
        return errors.EmailTaken("That email is already registered.")
    return None


def user_signup(*, handle: str, email: str, password: str, display_name: str = "") -> User:
    """Create a player. A handle or email taken in any letter case is a field error."""
    handle = _clean_handle(handle)
    email = _clean_email(email)
    display_name = (display_name or "").strip()[:60]
    if User.objects.filter(handle=handle).exists():
        raise errors.HandleTaken("That handle is taken.")
    _ensure_email_free(email)
    candidate = User(handle=handle, email=email, display_name=display_name)
    try:
        validate_password(password, user=candidate)
    except ValidationError as error:
        raise errors.PasswordRejected(error.messages) from error
    candidate.set_password(password)
    try:
        with transaction.atomic():
            candidate.save(force_insert=True)
            candidate.groups.add(Group.objects.get_or_create(name=roles.USER)[0])
            # Inside this transaction, so a player never exists without a portfolio.
            portfolio_open(owner=candidate)
            transaction.on_commit(SIGNUPS.inc)
    except IntegrityError as error:
        mapped = _error_for_unique_violation(error)
        if mapped is None:
            raise
        raise mapped from error
    return candidate


def user_profile_update(
    *,
    user: User,
    display_name: str,
    email: str,
    public_profile: bool,
    time_zone: str,
    profile_show_shares: bool | None = None,
    profile_show_trades: bool | None = None,
) -> User:
    """Save the settings page's profile card. The two sharing choices (what a public
    profile shows besides weights) are left as they are when not given."""
    email = _clean_email(email)
    time_zone = _clean_time_zone(time_zone)
    _ensure_email_free(email, except_user=user)
    user.display_name = (display_name or "").strip()[:60]
    user.email = email
    user.public_profile = public_profile
    user.time_zone = time_zone
    fields = ["display_name", "email", "public_profile", "time_zone"]
    if profile_show_shares is not None:
        user.profile_show_shares = profile_show_shares
        fields.append("profile_show_shares")
    if profile_show_trades is not None:
        user.profile_show_trades = profile_show_trades
        fields.append("profile_show_trades")
    try:
        with transaction.atomic():
            user.save(update_fields=fields)
    except IntegrityError as error:
        user.refresh_from_db()
        mapped = _error_for_unique_violation(error)
        if mapped is None:
            raise
        raise mapped from error
    return user


def sessions_end(*, user: User, except_session_key: str | None = None) -> int:
    """End the player's sessions at once (all but one, if given). Returns how many.

    The session rows are deleted from django_session, so the cookies stop working on
    the very next request; their UserSession rows go with them (cascade).
    """
    sessions = Session.objects.filter(tracking__user=user)
    if except_session_key:
        sessions = sessions.exclude(session_key=except_session_key)
    with transaction.atomic():
        keys = list(sessions.values_list("session_key", flat=True))
        Session.objects.filter(session_key__in=keys).delete()
    return len(keys)


def session_end(*, user: User, session_id: int) -> None:
    """End one of the player's own sessions. Someone else's session is "not found"."""
    tracked = UserSession.objects.filter(user=user, pk=session_id).first()
    if tracked is None:
        raise errors.AccountNotAllowed("That session no longer exists.")
    Session.objects.filter(session_key=tracked.session_id).delete()


def session_track(*, user: User, session_key: str, user_agent: str, ip: str | None) -> None:
    """Record that a session was just used (the tracking middleware calls this)."""
    now = timezone.now()
    try:
        # update_or_create runs in its own transaction; the deferred foreign key to the
        # session is checked when it commits, inside this try.
        UserSession.objects.update_or_create(
            session_id=session_key,
            defaults={
                "user": user,
                "user_agent": (user_agent or "")[:512],
                "ip": ip or None,
                "last_seen_at": now,
            },
            create_defaults={
                "user": user,
                "user_agent": (user_agent or "")[:512],
                "ip": ip or None,
                "created_at": now,
                "last_seen_at": now,
            },
        )
    except IntegrityError:
        # The session was ended (by another tab or a revoke) while this request ran.
        logger.info("session ended before it could be tracked")


def user_delete(*, user: User) -> None:
    """Soft-delete a player.

    The row stays, so the ledger, fills and offers that point at it stay intact. The
    handle stays reserved for good: nobody can take it over and appear in a deleted
    player's trade history. The email is released (replaced by a placeholder), so
    the person can sign up again with it under a new handle; the display name and the
    public profile go; the password becomes unusable; the roles are removed; every
    session ends at once.
    """
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        if locked.deleted_at is not None:
            return
        locked.deleted_at = timezone.now()
        locked.is_active = False
        locked.is_staff = False
        locked.email = f"deleted-{locked.pk}@deleted.invalid"
        locked.display_name = ""
        locked.public_profile = False
        locked.set_unusable_password()
        locked.save()
        locked.groups.clear()
        sessions_end(user=locked)
    user.refresh_from_db()


def user_suspend(*, user: User, reason: str, by: User) -> None:
    """Suspend a player: they cannot log in and their sessions end at once."""
    reason = (reason or "").strip()
    if not reason:
        raise errors.AccountNotAllowed("Give a reason for the suspension.", field="reason")
    if user.pk == by.pk:
        raise errors.AccountNotAllowed("You cannot suspend yourself.")
    if not by.has_perm("accounts.suspend_user"):
        raise errors.AccountNotAllowed("You are not allowed to suspend players.")
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(
            suspended_at=timezone.now(), suspension_reason=reason[:280]
        )
        sessions_end(user=user)
    logger.info("user %s suspended by %s: %s", user.handle, by.handle, reason)
    user.refresh_from_db()


def user_reactivate(*, user: User, by: User) -> None:
    """Lift a suspension. A deleted account stays deleted."""
    if not by.has_perm("accounts.suspend_user"):
        raise errors.AccountNotAllowed("You are not allowed to reactivate players.")
    if user.deleted_at is not None:
        raise errors.AccountNotAllowed("A deleted account cannot be reactivated.")
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(suspended_at=None, suspension_reason="")
    logger.info("user %s reactivated by %s", user.handle, by.handle)
    user.refresh_from_db()


def role_grant(*, user: User, role: str, by: User | None = None) -> User:
    """Give a player exactly one role. Staff status follows the role.

    `by` is None for operators at the command line (manage.py grant_role).
    """
    if role not in roles.ROLES:
        raise errors.RoleUnknown(f"Unknown role {role!r}; choose one of: {', '.join(roles.ROLES)}.")
    if by is not None and not by.has_perm("accounts.change_role"):
        raise errors.AccountNotAllowed("You are not allowed to change roles.")
    if user.deleted_at is not None:
        raise errors.AccountNotAllowed("A deleted account cannot be given a role.")
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        groups = [Group.objects.get_or_create(name=name)[0] for name in roles.ROLES]
        locked.groups.remove(*[group for group in groups if group.name != role])
        locked.groups.add(next(group for group in groups if group.name == role))
        locked.is_staff = role in roles.STAFF_ROLES
        locked.save(update_fields=["is_staff"])
    logger.info("user %s now has role %s (by %s)", user.handle, role, by or "the command line")
    user.refresh_from_db()
    # Django caches permissions on the instance.
    for cache_name in ("_perm_cache", "_user_perm_cache", "_group_perm_cache"):
        user.__dict__.pop(cache_name, None)
    return user
