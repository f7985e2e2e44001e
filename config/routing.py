"""Websocket routes: one socket per tab (DESIGN.md, "Live updates")."""

from __future__ import annotations

from django.urls import path

from market.consumers import LiveConsumer

websocket_urlpatterns = [
    path("ws/live/", LiveConsumer.as_asgi()),
]
