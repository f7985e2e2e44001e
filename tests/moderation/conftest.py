"""Fixtures for the staff admin tests: a real moderator and a real admin (roles given
through the same service as `manage.py grant_role`), each with a logged-in client."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.test import Client

from accounts import roles, services
from accounts.models import AuditEntry
from market.models import Stock
from portfolio.models import Portfolio
from portfolio.reconcile import reconcile_check, reservation_sources_load
from portfolio.services import portfolio_open
from tests.factories import StockFactory, UserFactory
from trading.services import order_place


def staff(role: str):
    user = UserFactory(handle=f"{role}_{uuid.uuid4().hex[:6]}")
    services.role_grant(user=user, role=role)
    return user


@pytest.fixture
def moderator(db):
    return staff(roles.MODERATOR)


@pytest.fixture
def admin_member(db):
    return staff(roles.ADMIN)


@pytest.fixture
def moderator_client(moderator) -> Client:
    client = Client()
    client.force_login(moderator)
    return client


@pytest.fixture
def admin_member_client(admin_member) -> Client:
    client = Client()
    client.force_login(admin_member)
    return client


@pytest.fixture
def stock(db) -> Stock:
    return StockFactory(symbol="ACME", last_price=Decimal("50.0000"))


@pytest.fixture
def trader(db) -> Portfolio:
    return portfolio_open(owner=UserFactory(handle="trader"))


def resting_buy(portfolio: Portfolio, stock: Stock, limit: str = "40.0000", quantity: int = 10):
    return order_place(
        portfolio=portfolio,
        stock=stock,
        side="buy",
        type="limit",
        quantity=quantity,
        limit_price=Decimal(limit),
        idempotency_key=uuid.uuid4().hex,
    )


def action(client: Client, url: str, name: str, ids: list[int], **form: str):
    """Run an admin action through its reason page: `form` empty posts the first step."""
    data = {"action": name, "_selected_action": [str(pk) for pk in ids], "index": "0"}
    if form:
        data |= {"apply": "1", **form}
    return client.post(url, data)


def last_audit(action_name: str) -> AuditEntry:
    return AuditEntry.objects.filter(action=action_name).latest("id")


def reconcile_ok() -> None:
    from django.conf import settings

    sources, errors = reservation_sources_load(settings.RECONCILE_RESERVATION_SOURCES)
    assert not errors
    report = reconcile_check(sources=sources)
    assert report.ok, [str(mismatch) for mismatch in report.mismatches]
