"""Orders, fills, offers and collusion flags for staff. Everything is read-only except
through actions that call trading's services: cancelling for a player (order_cancel /
offer_cancel release the reservations) and reviewing a collusion flag. Each action asks
for a reason or a note and lands in the audit log."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from accounts.admin_forms import ReviewForm, StaffAdmin, audit, reason_action
from trading import offer_admin
from trading.collusion import collusion_flag_review
from trading.errors import TradingError
from trading.models import CollusionFlag, Fill, OfferTake, Order, TradeOffer
from trading.offer_services import offer_cancel
from trading.services import order_cancel


class ReadOnlyStaffAdmin(StaffAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("trading.cancel_for_player")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in self.model._meta.fields]


@admin.register(Order)
class OrderAdmin(ReadOnlyStaffAdmin):
    list_display = (
        "id",
        "created_at",
        "owner",
        "stock",
        "side",
        "type",
        "quantity",
        "limit_price",
        "stop_price",
        "status",
        "reserved_cash",
    )
    list_filter = ("status", "type", "side", "time_in_force")
    list_select_related = ("portfolio__owner", "stock")
    search_fields = ("=id", "portfolio__owner__handle", "=stock__symbol")
    search_help_text = "Order id, player handle (contains) or symbol (exact)."
    ordering = ("-created_at", "-id")
    actions = ("cancel_orders",)

    @admin.display(description="player", ordering="portfolio__owner__handle")
    def owner(self, order: Order) -> str:
        return str(order.portfolio.owner)

    @admin.action(description="Cancel the selected open orders…", permissions=["cancel"])
    def cancel_orders(self, request: HttpRequest, queryset: QuerySet[Order]) -> HttpResponse | None:
        def perform(request: HttpRequest, order: Order, data: dict[str, Any]) -> None:
            order_cancel(order=order, by=request.user, reason=data["reason"])
            audit(request, "order.cancel", order, data["reason"], player=order.portfolio.owner_id)

        return reason_action(
            self,
            request,
            queryset.select_related("portfolio__owner", "stock"),
            title="Cancel orders",
            perform=perform,
            done="order(s) cancelled; their reservations were released",
            refusals=(TradingError,),
            danger=True,
        )


@admin.register(Fill)
class FillAdmin(ReadOnlyStaffAdmin):
    list_display = (
        "id",
        "created_at",
        "order_id",
        "portfolio",
        "stock",
        "side",
        "quantity",
        "price",
        "fee",
    )
    list_select_related = ("portfolio", "stock")
    list_filter = ("side",)
    search_fields = ("=order__id", "=stock__symbol")
    ordering = ("-created_at", "-id")


# The offers engineer's admin (trading/offer_admin.py: evidence table, takes inline) is
# the base; this adds the audit log, the 403 on refused actions and a required reason.
admin.site.unregister(TradeOffer)
admin.site.unregister(CollusionFlag)


@admin.register(TradeOffer)
class TradeOfferAdmin(StaffAdmin, offer_admin.TradeOfferAdmin):
    search_fields = ("=id", "maker__owner__handle", "addressee__handle", "=stock__symbol")
    search_help_text = "Offer id, maker or addressee handle (contains) or symbol (exact)."
    ordering = ("-created_at", "-id")
    actions = ("cancel_offers",)

    @admin.action(description="Cancel the selected live offers…", permissions=["cancel"])
    def cancel_offers(
        self, request: HttpRequest, queryset: QuerySet[TradeOffer]
    ) -> HttpResponse | None:
        def perform(request: HttpRequest, offer: TradeOffer, data: dict[str, Any]) -> None:
            offer_cancel(offer=offer, by=request.user)
            audit(request, "offer.cancel", offer, data["reason"], player=offer.maker.owner_id)

        return reason_action(
            self,
            request,
            queryset.select_related("maker__owner", "stock"),
            title="Cancel offers",
            perform=perform,
            done="offer(s) cancelled; their escrow was released",
            refusals=(TradingError,),
            danger=True,
        )


@admin.register(OfferTake)
class OfferTakeAdmin(ReadOnlyStaffAdmin):
    list_display = ("id", "created_at", "offer", "seller", "buyer", "stock", "quantity", "price")
    list_select_related = ("offer", "seller", "buyer", "stock")
    search_fields = ("=offer__id", "seller__handle", "buyer__handle")
    ordering = ("-created_at", "-id")


@admin.register(CollusionFlag)
class CollusionFlagAdmin(StaffAdmin, offer_admin.CollusionFlagAdmin):
    ordering = ("-last_seen_at", "-id")
    actions = ("review_flags",)

    def has_review_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("trading.review_collusion")

    @admin.action(description="Review the selected flags…", permissions=["review"])
    def review_flags(
        self, request: HttpRequest, queryset: QuerySet[CollusionFlag]
    ) -> HttpResponse | None:
        def perform(request: HttpRequest, flag: CollusionFlag, data: dict[str, Any]) -> None:
            collusion_flag_review(
                flag=flag, status=data["status"], note=data["note"], by=request.user
            )
            audit(request, "collusion.review", flag, data["note"], status=data["status"])

        return reason_action(
            self,
            request,
            queryset.select_related("player_a", "player_b"),
            title="Review flags",
            perform=perform,
            done="flag(s) reviewed",
            form_class=ReviewForm,
        )
