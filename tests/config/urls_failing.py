"""The real URLs plus a view that fails, for the 500 page test."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path

from config.urls import handler400, handler403, handler404, handler500
from config.urls import urlpatterns as real


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("the secret internals")


urlpatterns = [path("boom/", boom), *real]
__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
