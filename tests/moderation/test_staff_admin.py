"""The staff admin, driven through /admin/ by a real moderator and a real admin."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import roles, selectors
from accounts.models import AuditEntry, User
from market.models import MarketEvent, Stock
from portfolio.models import LedgerEntry
from tests.factories import PASSWORD, UserFactory
from tests.moderation.conftest import action, last_audit, reconcile_ok, resting_buy
from trading.models import CollusionFlag, OrderStatus, TradeOffer
from trading.offer_services import offer_make

pytestmark = pytest.mark.django_db

USERS = "/admin/accounts/user/"
STOCKS = "/admin/market/stock/"
ORDERS = "/admin/trading/order/"
OFFERS = "/admin/trading/tradeoffer/"
FLAGS = "/admin/trading/collusionflag/"


def log_in(client: Client, user: User):
    return client.post("/accounts/login/", {"username": user.handle, "password": PASSWORD})


def denied(path: str) -> bool:
    return AuditEntry.objects.filter(
        action="admin.denied", outcome="denied", details__path=path
    ).exists()


class TestPlayers:
    def test_a_moderator_suspends_with_a_reason_and_the_players_sessions_end(
        self, moderator, moderator_client
    ):
        target = UserFactory()
        their_browser = Client()
        assert log_in(their_browser, target).status_code == 302
        assert their_browser.get("/").status_code == 200

        first = action(moderator_client, USERS, "suspend_players", [target.pk])
        assert first.status_code == 200 and b'name="reason"' in first.content
        blank = action(moderator_client, USERS, "suspend_players", [target.pk], reason="  ")
        assert blank.status_code == 400
        target.refresh_from_db()
        assert target.suspended_at is None and not AuditEntry.objects.exists()

        done = action(moderator_client, USERS, "suspend_players", [target.pk], reason="Spam")
        assert done.status_code == 302
        target.refresh_from_db()
        assert target.suspended_at is not None and target.suspension_reason == "Spam"
        entry = last_audit("user.suspend")
        assert (entry.actor, entry.target_id, entry.reason) == (moderator, str(target.pk), "Spam")
        # Their session ended at once, and they cannot log back in.
        assert their_browser.get("/")["Location"].startswith("/accounts/login/")
        assert log_in(Client(), target).status_code != 302

        back = action(moderator_client, USERS, "reactivate_players", [target.pk], reason="Appeal")
        assert back.status_code == 302
        target.refresh_from_db()
        assert target.suspended_at is None
        assert last_audit("user.reactivate").reason == "Appeal"

    def test_a_moderator_may_not_change_roles_and_the_attempt_is_logged(
        self, moderator, moderator_client
    ):
        target = UserFactory()
        refused = action(
            moderator_client, USERS, "change_role", [target.pk], role="admin", reason="me"
        )
        assert refused.status_code == 403
        assert selectors.user_role(user=target) == roles.USER
        assert denied(USERS)
        page = f"{USERS}{target.pk}/role/"
        assert moderator_client.get(page).status_code == 403
        assert moderator_client.post(page, {"role": "admin", "reason": "x"}).status_code == 403
        assert denied(page)
        entry = AuditEntry.objects.filter(outcome="denied").latest("id")
        assert entry.actor == moderator and entry.details["method"] == "POST"

    def test_an_admin_changes_a_role_through_the_grant_role_service(
        self, admin_member, admin_member_client
    ):
        target = UserFactory()
        page = f"{USERS}{target.pk}/role/"
        assert admin_member_client.get(page).status_code == 200
        assert admin_member_client.post(page, {"role": "moderator"}).status_code == 400
        assert admin_member_client.post(page, {"role": "boss", "reason": "x"}).status_code == 400
        done = admin_member_client.post(page, {"role": "moderator", "reason": "Trusted"})
        assert done.status_code == 302
        assert selectors.user_role(user=target) == roles.MODERATOR
        assert User.objects.get(pk=target.pk).is_staff
        entry = last_audit("user.role")
        assert entry.details == {"before": "user", "after": "moderator"}
        assert entry.actor == admin_member

    @pytest.mark.parametrize("who", ["moderator_client", "admin_member_client"])
    def test_no_page_shows_the_password_hash(self, who, request):
        client = request.getfixturevalue(who)
        target = UserFactory()
        hashed = User.objects.get(pk=target.pk).password
        for path in (
            USERS,
            f"{USERS}{target.pk}/change/",
            f"{USERS}{target.pk}/history/",
            f"{USERS}?q={target.handle}",
        ):
            page = client.get(path)
            assert page.status_code == 200, path
            assert hashed.encode() not in page.content and b"argon2" not in page.content
            assert b'name="password"' not in page.content

    def test_admin_edits_of_a_player_are_audited(self, admin_member_client):
        target = UserFactory(display_name="Old")
        data = {
            "email": target.email,
            "display_name": "New",
            "time_zone": "UTC",
        }
        response = admin_member_client.post(f"{USERS}{target.pk}/change/", data)
        assert response.status_code == 302
        assert User.objects.get(pk=target.pk).display_name == "New"
        assert "Display name" in last_audit("user.change").details["change"]


class TestAuditLog:
    def test_admins_read_it_and_nobody_writes_it(self, admin_member_client, moderator_client):
        moderator_client.get("/admin/accounts/auditentry/")  # refused: one entry
        page = admin_member_client.get("/admin/accounts/auditentry/", {"outcome__exact": "denied"})
        assert page.status_code == 200
        assert [e.action for e in page.context["cl"].result_list] == ["admin.denied"]
        entry = AuditEntry.objects.get()
        assert admin_member_client.get("/admin/accounts/auditentry/add/").status_code == 403
        change = admin_member_client.get(f"/admin/accounts/auditentry/{entry.pk}/change/")
        assert change.status_code == 200 and b'name="_save"' not in change.content
        delete = admin_member_client.post(f"/admin/accounts/auditentry/{entry.pk}/delete/")
        assert delete.status_code == 403
        assert AuditEntry.objects.filter(pk=entry.pk).exists()

    def test_moderators_cannot_see_it(self, moderator_client):
        assert moderator_client.get("/admin/accounts/auditentry/").status_code == 403
        assert denied("/admin/accounts/auditentry/")
        assert b"auditentry" not in moderator_client.get("/admin/").content


class TestStocks:
    def test_a_moderator_halts_and_resumes_with_a_reason(self, moderator_client, stock):
        assert action(moderator_client, STOCKS, "halt", [stock.pk], reason="").status_code == 400
        assert not Stock.objects.get(pk=stock.pk).halted
        assert action(moderator_client, STOCKS, "halt", [stock.pk], reason="News pending")
        stock.refresh_from_db()
        assert stock.halted and stock.halt_reason == "News pending"
        assert last_audit("stock.halt").target_label == "ACME"
        action(moderator_client, STOCKS, "resume", [stock.pk], reason="News out")
        stock.refresh_from_db()
        assert not stock.halted and last_audit("stock.resume").reason == "News out"

    def test_a_moderator_may_not_delist_list_or_edit(self, moderator_client, stock):
        refused = action(moderator_client, STOCKS, "delist", [stock.pk], reason="x")
        assert refused.status_code == 403 and denied(STOCKS)
        assert Stock.objects.get(pk=stock.pk).delisted_at is None
        assert moderator_client.get(f"{STOCKS}add/").status_code == 403
        edit = moderator_client.post(f"{STOCKS}{stock.pk}/change/", {"name": "Renamed"})
        assert edit.status_code == 403
        settings_page = reverse("admin:market_settings")
        assert moderator_client.get(settings_page).status_code == 403
        assert denied(settings_page)

    def test_an_admin_delists_and_the_open_orders_release_their_cash(
        self, admin_member_client, stock, trader
    ):
        order = resting_buy(trader, stock)
        trader.refresh_from_db()
        assert trader.reserved_cash > 0
        done = action(admin_member_client, STOCKS, "delist", [stock.pk], reason="Bankrupt")
        assert done.status_code == 302
        stock.refresh_from_db()
        order.refresh_from_db()
        trader.refresh_from_db()
        assert stock.delisted_at is not None
        assert order.status == OrderStatus.CANCELLED and trader.reserved_cash == 0
        entry = last_audit("stock.delist")
        assert entry.details == {"orders_cancelled": 1, "offers_cancelled": 0}
        reconcile_ok()

    def test_an_admin_lists_and_edits_a_stock(self, admin_member_client):
        data = {"symbol": "NEWCO", "name": "New Co", "sector": "energy", "industry": ""}
        bad = admin_member_client.post(f"{STOCKS}add/", {**data, "symbol": "bad sym"})
        assert bad.status_code == 200 and not Stock.objects.filter(name="New Co").exists()
        made = admin_member_client.post(f"{STOCKS}add/", {**data, "last_price": "12.5"})
        assert made.status_code == 302
        new = Stock.objects.get(symbol="NEWCO")
        assert new.previous_close == new.last_price == Decimal("12.5")
        assert last_audit("stock.add").target_label == "NEWCO"
        edit = {"name": "NewCo Inc", "sector": "energy", "industry": "Oil"}
        assert admin_member_client.post(f"{STOCKS}{new.pk}/change/", edit).status_code == 302
        new.refresh_from_db()
        assert new.name == "NewCo Inc" and new.last_price == Decimal("12.5")
        assert last_audit("stock.change").target_id == str(new.pk)

    def test_the_market_settings_page_shows_the_environment_read_only(
        self, admin_member_client, settings
    ):
        settings.MARKET_TICK_SECONDS = 7
        page = admin_member_client.get(reverse("admin:market_settings"))
        assert page.status_code == 200
        assert ("Market", "MARKET_TICK_SECONDS", 7, "Seconds between ticks") in page.context["rows"]
        assert b"<form" not in page.content.split(b'id="content"')[1]


class TestMarketEvents:
    URL = "/admin/market/marketevent/add/"

    def test_a_moderator_publishes_a_shock_that_the_next_tick_applies_once(
        self, moderator, moderator_client, stock
    ):
        form = {"headline": "ACME wins contract", "body": "", "scope": "stock", "sector": ""}
        too_big = moderator_client.post(self.URL, {**form, "stock": stock.pk, "impact_pct": "80"})
        assert too_big.status_code == 200 and b"between -50% and 50%" in too_big.content
        no_stock = moderator_client.post(self.URL, {**form, "impact_pct": "10"})
        assert no_stock.status_code == 200 and not MarketEvent.objects.exists()

        done = moderator_client.post(self.URL, {**form, "stock": stock.pk, "impact_pct": "10"})
        assert done.status_code == 302
        event = MarketEvent.objects.get()
        assert (event.source, event.created_by, event.impact_pct) == (
            "moderator",
            moderator,
            Decimal("10"),
        )
        assert event.has_pending_shock
        assert last_audit("marketevent.publish").details["impact_pct"] == "10"

        from market.services import tick_run
        from market.sessions import tick_slot

        before = stock.last_price
        slot = tick_slot(timezone.now()) + 1  # the next tick after publishing
        tick_run(slot=slot)
        event.refresh_from_db()
        stock.refresh_from_db()
        assert event.shock_applied_at is not None
        assert stock.last_price > before * Decimal("1.05")
        tick_run(slot=slot + 1)
        stock.refresh_from_db()
        # Applied once: the next tick moves the price by the model's noise only.
        assert stock.last_price < before * Decimal("1.15")

    def test_published_events_are_not_edited(self, moderator_client, admin_member_client):
        from tests.factories import MarketEventFactory

        event = MarketEventFactory()
        for client in (moderator_client, admin_member_client):
            page = client.post(
                f"/admin/market/marketevent/{event.pk}/change/", {"headline": "Rewritten"}
            )
            assert page.status_code == 403
        assert MarketEvent.objects.get(pk=event.pk).headline != "Rewritten"


class TestTrading:
    def test_a_moderator_cancels_a_players_order_with_a_reason(
        self, moderator, moderator_client, stock, trader
    ):
        order = resting_buy(trader, stock)
        assert action(moderator_client, ORDERS, "cancel_orders", [order.pk]).status_code == 200
        assert (
            action(moderator_client, ORDERS, "cancel_orders", [order.pk], reason="").status_code
            == 400
        )
        order.refresh_from_db()
        assert order.is_open
        done = action(moderator_client, ORDERS, "cancel_orders", [order.pk], reason="Abuse")
        assert done.status_code == 302
        order.refresh_from_db()
        trader.refresh_from_db()
        assert order.status == OrderStatus.CANCELLED and order.reason == "Abuse"
        assert trader.reserved_cash == 0
        assert last_audit("order.cancel").details == {"player": trader.owner_id}
        # A second cancel is refused by the service, not doubled.
        again = action(moderator_client, ORDERS, "cancel_orders", [order.pk], reason="Again")
        assert again.status_code == 302
        assert AuditEntry.objects.filter(action="order.cancel").count() == 1
        reconcile_ok()

    def test_a_moderator_cancels_a_players_offer_and_its_escrow_is_released(
        self, moderator_client, stock, trader
    ):
        offer = offer_make(
            maker=trader,
            stock=stock,
            side="buy",
            quantity=5,
            price=Decimal("50.0000"),
            idempotency_key="o1",
        )
        trader.refresh_from_db()
        assert trader.reserved_cash > 0
        done = action(moderator_client, OFFERS, "cancel_offers", [offer.pk], reason="Scam")
        assert done.status_code == 302
        offer.refresh_from_db()
        trader.refresh_from_db()
        assert offer.status == "cancelled" and trader.reserved_cash == 0
        assert last_audit("offer.cancel").reason == "Scam"
        assert TradeOffer.objects.filter(status="cancelled").count() == 1
        reconcile_ok()

    def test_a_moderator_reviews_a_collusion_flag_with_a_note(self, moderator_client):
        a, b = sorted([UserFactory(), UserFactory()], key=lambda user: user.pk)
        flag = CollusionFlag.objects.create(
            player_a=a, player_b=b, kind="round_trip", occurrences=3, last_seen_at=timezone.now()
        )
        listing = moderator_client.get(FLAGS, {"status__exact": "open"})
        assert listing.status_code == 200 and list(listing.context["cl"].result_list) == [flag]
        blank = action(
            moderator_client, FLAGS, "review_flags", [flag.pk], status="reviewed", note=""
        )
        assert blank.status_code == 400
        done = action(
            moderator_client, FLAGS, "review_flags", [flag.pk], status="dismissed", note="Siblings"
        )
        assert done.status_code == 302
        flag.refresh_from_db()
        assert flag.status == "dismissed" and flag.note.endswith("Siblings")
        assert last_audit("collusion.review").details == {"status": "dismissed"}


class TestCash:
    def test_an_admin_adjusts_cash_only_through_the_ledger_with_a_reason(
        self, admin_member, admin_member_client, trader
    ):
        url = reverse("admin:portfolio_portfolio_adjust_cash", args=[trader.pk])
        for bad in (
            {"amount": "10.001", "reason": "x", "nonce": "a"},
            {"amount": "10", "reason": "", "nonce": "b"},
            {"amount": "abc", "reason": "x", "nonce": "c"},
        ):
            assert admin_member_client.post(url, bad).status_code == 400, bad
        assert not LedgerEntry.objects.filter(kind="adjustment").exists()
        done = admin_member_client.post(
            url, {"amount": "-250.50", "reason": "Refund", "nonce": "d"}
        )
        assert done.status_code == 302
        trader.refresh_from_db()
        assert trader.cash == Decimal("100000.00") - Decimal("250.50")
        entry = last_audit("portfolio.adjust_cash")
        assert entry.details["amount"] == "-250.50" and entry.actor == admin_member
        # The balance is not a field anywhere in the change form.
        page = admin_member_client.get(f"/admin/portfolio/portfolio/{trader.pk}/change/")
        assert b'name="cash"' not in page.content
        reconcile_ok()

    def test_a_moderator_may_not_adjust_cash(self, moderator_client, trader):
        url = reverse("admin:portfolio_portfolio_adjust_cash", args=[trader.pk])
        refused = moderator_client.post(url, {"amount": "1000", "reason": "pls", "nonce": "e"})
        assert refused.status_code == 403
        assert denied(url)
        assert not LedgerEntry.objects.filter(kind="adjustment").exists()


class TestEveryPage:
    @pytest.mark.parametrize("who", ["moderator", "admin_member"])
    def test_every_list_and_change_page_a_role_may_see_renders(self, who, request, stock, trader):
        from django.contrib import admin
        from django.test import RequestFactory

        user = request.getfixturevalue(who)
        client = Client()
        client.force_login(user)
        order = resting_buy(trader, stock)
        offer_make(
            maker=trader,
            stock=stock,
            side="buy",
            quantity=1,
            price=Decimal("50"),
            idempotency_key="e",
        )
        a, b = sorted([UserFactory(), UserFactory()], key=lambda player: player.pk)
        CollusionFlag.objects.create(
            player_a=a, player_b=b, kind="one_way", last_seen_at=timezone.now()
        )
        probe = RequestFactory().get("/admin/")
        probe.user = user
        seen = 0
        for model, model_admin in admin.site._registry.items():
            if not model_admin.has_view_or_change_permission(probe):
                continue
            opts = model._meta
            changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
            page = client.get(changelist)
            assert page.status_code == 200, changelist
            first = model_admin.get_queryset(probe).first()
            if first is not None:
                change = reverse(
                    f"admin:{opts.app_label}_{opts.model_name}_change", args=[first.pk]
                )
                assert client.get(change).status_code == 200, change
            seen += 1
        # user, stock, event, order, offer, flag, portfolio; admins see every model.
        assert seen == 7 if who == "moderator" else seen >= 15
        assert order.is_open
