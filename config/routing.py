"""Websocket routes. The live consumer is added by the live-updates work."""

from __future__ import annotations

from django.urls import path  # noqa: F401

websocket_urlpatterns: list = []
