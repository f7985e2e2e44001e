from __future__ import annotations

import logging
from typing import Any

from django.apps import AppConfig

logger = logging.getLogger(__name__)


def _record_login_net_worth(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    from portfolio.services import portfolio_login_record

    try:
        portfolio_login_record(owner=user)
    except Exception:
        # The "since your last login" figure is a nicety; it must never fail a login.
        logger.exception("could not record the net worth at login of user %s", user.pk)


class PortfolioConfig(AppConfig):
    name = "portfolio"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        user_logged_in.connect(_record_login_net_worth, dispatch_uid="portfolio_login_net_worth")
