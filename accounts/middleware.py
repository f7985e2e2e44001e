from __future__ import annotations

import time
import zoneinfo
from collections.abc import Callable

from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.utils import timezone


class ActiveAccountMiddleware:
    """Ends the session of a player who was deleted or suspended since logging in.

    The services also delete their sessions at once; this is the backstop for a
    session created in the instant between.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not user.can_log_in:
            logout(request)
        return self.get_response(request)


class UserTimezoneMiddleware:
    """Times are stored in UTC and shown in the player's own time zone."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        zone_name = (
            getattr(user, "time_zone", "") if user is not None and user.is_authenticated else ""
        )
        try:
            timezone.activate(zoneinfo.ZoneInfo(zone_name or "UTC"))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            timezone.activate(zoneinfo.ZoneInfo("UTC"))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


# Session data key holding [session_key, unix time] of the last tracking write.
_TRACKED = "_bullpen_tracked"


class SessionTrackingMiddleware:
    """Keeps the "devices" list current: records each logged-in session's device, IP
    and last activity, writing at most once a minute per session.

    The marker lives in the session itself (no extra read per request) and carries the
    session key, so a rotated key (log-in, password change) is tracked at once.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        session = getattr(request, "session", None)
        if user is None or session is None or not user.is_authenticated:
            return response
        session_key = session.session_key
        if not session_key or response.status_code >= 500:
            return response
        from accounts.services import SESSION_TOUCH_INTERVAL, session_track

        now = time.time()
        marker = session.get(_TRACKED)
        if (
            marker
            and marker[0] == session_key
            and now - marker[1] < SESSION_TOUCH_INTERVAL.total_seconds()
        ):
            return response
        session_track(
            user=user,
            session_key=session_key,
            user_agent=request.headers.get("User-Agent", ""),
            ip=request.META.get("REMOTE_ADDR"),
        )
        session[_TRACKED] = [session_key, now]
        return response
