"""Moderators halt and resume stocks and publish market events here; admins also list,
edit and delist stocks and read the market settings. Every change goes through
market.services (or trading's services for the orders a delisting closes), asks for a
reason where it acts on players' trading, and lands in the audit log."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from accounts.admin_forms import StaffAdmin, audit, reason_action, require_perm
from market import services
from market.models import EventScope, MarketEvent, Stock

# A moderator's shock moves prices by at most this much in one tick, either way.
MAX_SHOCK_PCT = Decimal("50")

QUOTE_FIELDS = (
    "last_price",
    "previous_close",
    "change",
    "change_pct",
    "day_open",
    "day_high",
    "day_low",
    "volume",
    "quoted_at",
)


class ListedFilter(admin.SimpleListFilter):
    title = "listing"
    parameter_name = "listed"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Listed"), ("no", "Delisted")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Stock]) -> QuerySet[Stock]:
        if self.value() == "yes":
            return queryset.filter(delisted_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(delisted_at__isnull=False)
        return queryset


def _close_trading_in(request: HttpRequest, stock: Stock, reason: str) -> tuple[int, int]:
    """Cancel the open orders and live offers on a stock being delisted, through
    trading's services, so every reservation is released. Returns (orders, offers)."""
    from trading.models import OFFER_LIVE_STATUSES, OPEN_STATUSES, Order, TradeOffer
    from trading.offer_services import offer_cancel
    from trading.services import order_cancel

    orders = list(Order.objects.filter(stock=stock, status__in=OPEN_STATUSES).order_by("id"))
    for order in orders:
        order_cancel(order=order, by=request.user, reason=f"Stock delisted: {reason}")
    offers = list(
        TradeOffer.objects.filter(stock=stock, status__in=OFFER_LIVE_STATUSES).order_by("id")
    )
    for offer in offers:
        offer_cancel(offer=offer, by=request.user)
    return len(orders), len(offers)


@admin.register(Stock)
class StockAdmin(StaffAdmin):
    list_display = (
        "symbol",
        "name",
        "sector",
        "last_price",
        "change_pct",
        "halted",
        "halt_reason",
        "delisted_at",
    )
    list_filter = (ListedFilter, "halted", "sector")
    search_fields = ("symbol", "name")
    ordering = ("symbol",)
    actions = ("halt", "resume", "delist")
    change_list_template = "admin/market/stock/change_list.html"

    def get_fields(self, request: HttpRequest, obj: Stock | None = None) -> tuple[str, ...]:
        listing = ("symbol", "name", "sector", "industry")
        if obj is None:
            return (*listing, "last_price")  # a new listing starts at a price
        return (*listing, *QUOTE_FIELDS, "halted", "halt_reason", "delisted_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Stock | None = None) -> tuple:
        if obj is None:
            return ()
        # The symbol is the key players and history know the stock by; quotes are the
        # tick's; halting and delisting have their own audited actions.
        return ("symbol", *QUOTE_FIELDS, "halted", "halt_reason", "delisted_at")

    def save_model(self, request: HttpRequest, obj: Stock, form: Any, change: bool) -> None:
        if not change:
            obj.previous_close = obj.day_open = obj.day_high = obj.day_low = obj.last_price
        super().save_model(request, obj, form, change)

    def has_delete_permission(self, request: HttpRequest, obj: Stock | None = None) -> bool:
        return False  # delisting keeps history; a delete would erase it

    def has_halt_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("market.halt_stock")

    def has_delist_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("market.delist_stock")

    @admin.action(description="Halt trading in the selected stocks…", permissions=["halt"])
    def halt(self, request: HttpRequest, queryset: QuerySet[Stock]) -> HttpResponse | None:
        def perform(request: HttpRequest, stock: Stock, data: dict[str, Any]) -> None:
            if services.stock_halt(stock_ids=[stock.pk], reason=data["reason"]):
                audit(request, "stock.halt", stock, data["reason"])

        return reason_action(
            self, request, queryset, title="Halt trading", perform=perform, done="stock(s) halted"
        )

    @admin.action(description="Resume trading in the selected stocks…", permissions=["halt"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Stock]) -> HttpResponse | None:
        def perform(request: HttpRequest, stock: Stock, data: dict[str, Any]) -> None:
            if services.stock_resume(stock_ids=[stock.pk]):
                audit(request, "stock.resume", stock, data["reason"])

        return reason_action(
            self,
            request,
            queryset,
            title="Resume trading",
            perform=perform,
            done="stock(s) resumed",
        )

    @admin.action(description="Delist the selected stocks…", permissions=["delist"])
    def delist(self, request: HttpRequest, queryset: QuerySet[Stock]) -> HttpResponse | None:
        def perform(request: HttpRequest, stock: Stock, data: dict[str, Any]) -> None:
            orders, offers = _close_trading_in(request, stock, data["reason"])
            if services.stock_delist(stock_ids=[stock.pk], at=timezone.now()):
                audit(
                    request,
                    "stock.delist",
                    stock,
                    data["reason"],
                    orders_cancelled=orders,
                    offers_cancelled=offers,
                )

        return reason_action(
            self,
            request,
            queryset,
            title="Delist stocks",
            perform=perform,
            done="stock(s) delisted; their open orders and offers were cancelled",
            danger=True,
        )

    # --- the market settings (read-only) ---------------------------------------------

    def get_urls(self) -> list[Any]:
        return [
            path(
                "market-settings/",
                self.admin_site.admin_view(self.market_settings_view),
                name="market_settings",
            ),
            *super().get_urls(),
        ]

    def market_settings_view(self, request: HttpRequest) -> HttpResponse:
        require_perm(request, "market.delist_stock")
        context = {
            **self.admin_site.each_context(request),
            "title": "Market settings",
            "opts": self.model._meta,
            "rows": market_settings_rows(),
        }
        return TemplateResponse(request, "admin/market/market_settings.html", context)


def market_settings_rows() -> list[tuple[str, str, Any, str]]:
    """(group, environment variable, current value, what it does) for the settings page.

    Decision (docs/moderation.md): these stay environment settings, shown here read-only.
    The provider and the tick interval are read by beat and the workers at start, so a
    runtime switch would need every process to watch for it; changing them is a deploy.
    """
    return [
        ("Market", "MARKET_PROVIDER", settings.MARKET_PROVIDER, "Where quotes come from"),
        ("Market", "MARKET_TICK_SECONDS", settings.MARKET_TICK_SECONDS, "Seconds between ticks"),
        ("Market", "MARKET_SEED", settings.MARKET_SEED, "Seed of the simulated market"),
        ("Market", "MARKET_REPLAY_SPEED", settings.MARKET_REPLAY_SPEED, "Replay speed"),
        ("Market", "MARKET_MAX_JUMP", settings.MARKET_MAX_JUMP, "Largest accepted move a tick"),
        ("Fill model", "FILL_COMMISSION_FLAT", settings.FILL_COMMISSION_FLAT, "Fee per fill"),
        ("Fill model", "FILL_COMMISSION_BPS", settings.FILL_COMMISSION_BPS, "Fee, bps of value"),
        (
            "Fill model",
            "FILL_HALF_SPREAD_BPS",
            settings.FILL_HALF_SPREAD_BPS,
            "Price moved against the player, bps",
        ),
        ("Game", "SESSION_CLOSE_UTC", settings.SESSION_CLOSE_UTC, "DAY orders expire at (UTC)"),
        ("Game", "STARTING_CASH", settings.STARTING_CASH, "Cash of a new portfolio"),
    ]


class MarketEventForm(forms.ModelForm):
    class Meta:
        model = MarketEvent
        fields = ("headline", "body", "scope", "stock", "sector", "impact_pct")
        labels = {"impact_pct": "Price shock (%)"}
        help_texts = {
            "impact_pct": (
                "A one-off move in percent that the simulated market applies at the next tick "
                f"(-{MAX_SHOCK_PCT} to {MAX_SHOCK_PCT}; 0 for news only)."
            ),
        }

    def clean_impact_pct(self) -> Decimal:
        impact = self.cleaned_data["impact_pct"]
        if impact is None:
            return Decimal("0")
        if abs(impact) > MAX_SHOCK_PCT:
            raise forms.ValidationError(
                f"A shock is between -{MAX_SHOCK_PCT}% and {MAX_SHOCK_PCT}%."
            )
        return impact

    def clean(self) -> dict:
        data = super().clean()
        scope = data.get("scope")
        if scope == EventScope.STOCK and not data.get("stock"):
            self.add_error("stock", "Choose the stock this event is about.")
        if scope == EventScope.SECTOR and not data.get("sector"):
            self.add_error("sector", "Choose the sector this event is about.")
        if scope != EventScope.STOCK:
            data["stock"] = None
        if scope != EventScope.SECTOR:
            data["sector"] = ""
        return data


@admin.register(MarketEvent)
class MarketEventAdmin(StaffAdmin):
    form = MarketEventForm
    list_display = (
        "headline",
        "scope",
        "stock",
        "sector",
        "impact_pct",
        "source",
        "created_by",
        "published_at",
        "shock_applied_at",
    )
    list_filter = ("source", "scope", "sector")
    list_select_related = ("stock", "created_by")
    search_fields = ("headline",)
    autocomplete_fields = ("stock",)
    ordering = ("-published_at", "-id")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("market.add_marketevent") and request.user.has_perm(
            "market.publish_event"
        )

    def has_change_permission(self, request: HttpRequest, obj: MarketEvent | None = None) -> bool:
        return False  # published news is not rewritten; publish a correction

    def has_delete_permission(self, request: HttpRequest, obj: MarketEvent | None = None) -> bool:
        return False

    def save_model(
        self, request: HttpRequest, obj: MarketEvent, form: forms.ModelForm, change: bool
    ) -> None:
        data = form.cleaned_data
        published = services.event_publish(
            headline=data["headline"],
            body=data.get("body", ""),
            scope=data["scope"],
            impact_pct=data["impact_pct"],
            created_by_id=request.user.id,
            at=timezone.now(),
            stock_id=data["stock"].id if data.get("stock") else None,
            sector=data.get("sector", ""),
        )
        obj.pk = published.pk
        obj.published_at = published.published_at

    def log_addition(self, request: HttpRequest, obj: MarketEvent, message: Any) -> Any:
        audit(
            request,
            "marketevent.publish",
            obj,
            obj.headline,
            scope=obj.scope,
            impact_pct=obj.impact_pct,
        )
        return admin.ModelAdmin.log_addition(self, request, obj, message)
