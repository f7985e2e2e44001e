from __future__ import annotations

from django.apps import AppConfig


class MarketConfig(AppConfig):
    name = "market"
