"""Moderators halt and resume stocks and publish market events here; admins also
delist. Every change goes through market.services."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from market import services
from market.models import EventScope, MarketEvent, Stock


@admin.register(Stock)
class StockAdmin(admin.ModelAdmin):
    list_display = ("symbol", "name", "sector", "last_price", "change_pct", "halted", "delisted_at")
    list_filter = ("sector", "halted", ("delisted_at", admin.EmptyFieldListFilter))
    search_fields = ("symbol", "name")
    readonly_fields = (
        "last_price", "previous_close", "change", "change_pct", "day_open", "day_high",
        "day_low", "volume", "quoted_at", "halted", "halt_reason", "delisted_at",
    )  # fmt: skip
    actions = ("halt", "resume", "delist")

    def has_delete_permission(self, request: HttpRequest, obj: Stock | None = None) -> bool:
        return False  # delisting keeps history; a delete would erase it

    @admin.action(description="Halt trading in the selected stocks", permissions=["halt"])
    def halt(self, request: HttpRequest, queryset: QuerySet[Stock]) -> None:
        count = services.stock_halt(
            stock_ids=list(queryset.values_list("id", flat=True)), reason="Halted by a moderator."
        )
        self.message_user(request, f"{count} stock(s) halted.", messages.SUCCESS)

    @admin.action(description="Resume trading in the selected stocks", permissions=["halt"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Stock]) -> None:
        count = services.stock_resume(stock_ids=list(queryset.values_list("id", flat=True)))
        self.message_user(request, f"{count} stock(s) resumed.", messages.SUCCESS)

    @admin.action(description="Delist the selected stocks", permissions=["delist"])
    def delist(self, request: HttpRequest, queryset: QuerySet[Stock]) -> None:
        count = services.stock_delist(
            stock_ids=list(queryset.values_list("id", flat=True)), at=timezone.now()
        )
        self.message_user(request, f"{count} stock(s) delisted.", messages.SUCCESS)

    def has_halt_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("market.halt_stock")

    def has_delist_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("market.delist_stock")


class MarketEventForm(forms.ModelForm):
    class Meta:
        model = MarketEvent
        fields = ("headline", "body", "scope", "stock", "sector", "impact_pct")
        help_texts = {
            "impact_pct": "A one-off price move in percent the next tick applies (0 for news only).",
        }

    def clean(self) -> dict:
        data = super().clean()
        scope = data.get("scope")
        if scope == EventScope.STOCK and not data.get("stock"):
            self.add_error("stock", "Choose the stock this event is about.")
        if scope == EventScope.SECTOR and not data.get("sector"):
            self.add_error("sector", "Choose the sector this event is about.")
        return data


@admin.register(MarketEvent)
class MarketEventAdmin(admin.ModelAdmin):
    form = MarketEventForm
    list_display = (
        "headline",
        "scope",
        "stock",
        "sector",
        "impact_pct",
        "source",
        "published_at",
        "shock_applied_at",
    )
    list_filter = ("source", "scope", "sector")
    search_fields = ("headline",)
    autocomplete_fields = ("stock",)
    date_hierarchy = "published_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("market.add_marketevent") and request.user.has_perm(
            "market.publish_event"
        )

    def has_change_permission(self, request: HttpRequest, obj: MarketEvent | None = None) -> bool:
        return False  # published news is not rewritten; publish a correction

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
