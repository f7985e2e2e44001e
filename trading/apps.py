from __future__ import annotations

from django.apps import AppConfig


class TradingConfig(AppConfig):
    name = "trading"
