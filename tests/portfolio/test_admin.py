from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from portfolio.models import LedgerEntry

pytestmark = pytest.mark.django_db


def test_the_ledger_is_read_only_in_the_admin(admin_client, portfolio):
    entry = LedgerEntry.objects.get(portfolio=portfolio)
    assert admin_client.get(reverse("admin:portfolio_ledgerentry_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:portfolio_ledgerentry_add")).status_code == 403
    page = admin_client.get(reverse("admin:portfolio_ledgerentry_change", args=[entry.pk]))
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert (
        admin_client.post(
            reverse("admin:portfolio_ledgerentry_delete", args=[entry.pk])
        ).status_code
        == 403
    )


def test_portfolio_cash_is_not_editable_but_can_be_adjusted_with_a_reason(
    admin_client, admin_user, portfolio
):
    page = admin_client.get(reverse("admin:portfolio_portfolio_change", args=[portfolio.pk]))
    assert b'name="cash"' not in page.content and b"Adjust cash" in page.content
    url = reverse("admin:portfolio_portfolio_adjust_cash", args=[portfolio.pk])
    refused = admin_client.post(url, {"amount": "-100000.01", "reason": "oops", "nonce": "n1"})
    assert refused.status_code == 400 and b"only $100,000.00 is not reserved" in refused.content
    assert admin_client.post(url, {"amount": "0", "reason": "x", "nonce": "n2"}).status_code == 400
    done = admin_client.post(url, {"amount": "12.50", "reason": "Bug bounty", "nonce": "n3"})
    assert done.status_code == 302
    again = admin_client.post(url, {"amount": "12.50", "reason": "Bug bounty", "nonce": "n3"})
    assert again.status_code == 400  # the same form submitted twice posts once
    portfolio.refresh_from_db()
    assert portfolio.cash == Decimal("100012.50")
    entry = LedgerEntry.objects.get(kind="adjustment")
    assert entry.created_by == admin_user and entry.memo == "Bug bounty"


def test_only_holders_of_adjust_cash_may_adjust(client, portfolio):
    from django.contrib.auth.models import Permission

    from tests.factories import UserFactory

    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_portfolio"))
    client.force_login(staff)
    url = reverse("admin:portfolio_portfolio_adjust_cash", args=[portfolio.pk])
    assert client.post(url, {"amount": "5.00", "reason": "x", "nonce": "n"}).status_code == 403
    page = client.get(reverse("admin:portfolio_portfolio_change", args=[portfolio.pk]))
    assert page.status_code == 200 and b"Adjust cash" not in page.content
