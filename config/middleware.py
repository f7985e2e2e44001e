"""Request-level guards that belong to no app."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string


class BodySizeLimitMiddleware:
    """Answers 413 before reading a body whose declared length is over the limit.

    Django itself answers 400 once it reads past DATA_UPLOAD_MAX_MEMORY_SIZE (the case
    of a chunked body with no Content-Length); this turns the common case into the
    right status without reading anything. The front web server should cap too.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if limit is not None and declared > limit:
            return HttpResponse(render_to_string("errors/413.html"), status=413)
        return self.get_response(request)
