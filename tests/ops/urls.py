"""The site's URLs plus one page that says who the session belongs to (rotation tests)."""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.urls import path

from config.urls import handler404, handler500  # noqa: F401
from config.urls import urlpatterns as site_urlpatterns


def whoami(request: HttpRequest) -> HttpResponse:
    user = request.user
    return HttpResponse(user.handle if user.is_authenticated else "anonymous")


def log_a_line(request: HttpRequest) -> HttpResponse:
    logging.getLogger("bullpen.ops").warning("inside the view")
    return HttpResponse("logged")


urlpatterns = [
    path("__ops__/whoami", whoami),
    path("__ops__/log", log_a_line),
    *site_urlpatterns,
]
