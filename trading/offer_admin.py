"""The admin of offers and collusion flags, for moderators.

Both are read-only records: offers change only through trading.offer_services (a
moderator holding trading.cancel_for_player may cancel one for a player, which releases
its escrow like the maker's own cancel). A collusion flag's only editable parts are
the review status and the note; holders of trading.review_collusion see and review
them. Nothing here punishes a player: a flag informs the moderator who decides.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from trading.errors import TradingError
from trading.models import OFFER_LIVE_STATUSES, CollusionFlag, OfferTake, TradeOffer
from trading.offer_services import offer_cancel

REVIEW = "trading.review_collusion"


class OfferTakeInline(admin.TabularInline):
    model = OfferTake
    fields = (
        "number",
        "taker",
        "quantity",
        "price",
        "quote_price",
        "maker_fee",
        "taker_fee",
        "created_at",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(TradeOffer)
class TradeOfferAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "maker_handle",
        "side",
        "quantity",
        "remaining_quantity",
        "stock",
        "price",
        "addressee",
        "status",
        "expires_at",
    )
    list_filter = ("status", "side")
    search_fields = ("maker__owner__handle", "addressee__handle", "stock__symbol")
    list_select_related = ("maker__owner", "addressee", "stock")
    readonly_fields = [field.name for field in TradeOffer._meta.fields]
    inlines = [OfferTakeInline]
    actions = ["cancel_for_player"]
    date_hierarchy = "created_at"

    @admin.display(description="maker", ordering="maker__owner__handle")
    def maker_handle(self, offer: TradeOffer) -> str:
        return f"@{offer.maker.owner.handle}"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Cancel for the player (releases the escrow)", permissions=["cancel"])
    def cancel_for_player(self, request: HttpRequest, queryset: QuerySet[TradeOffer]) -> None:
        done = 0
        for offer in queryset.filter(status__in=OFFER_LIVE_STATUSES):
            try:
                offer_cancel(offer=offer, by=request.user)
                done += 1
            except TradingError as error:
                self.message_user(request, f"Offer #{offer.pk}: {error.message}", messages.ERROR)
        self.message_user(request, f"Cancelled {done} offer(s).", messages.SUCCESS)

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("trading.cancel_for_player")


@admin.register(CollusionFlag)
class CollusionFlagAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "kind",
        "pair",
        "beneficiary",
        "occurrences",
        "value_moved",
        "status",
        "last_seen_at",
    )
    list_filter = ("kind", "status")
    search_fields = ("player_a__handle", "player_b__handle")
    list_select_related = ("player_a", "player_b", "beneficiary")
    fields = (
        "kind",
        "player_a",
        "player_b",
        "beneficiary",
        "occurrences",
        "value_moved",
        "first_seen_at",
        "last_seen_at",
        "evidence_table",
        "status",
        "note",
    )
    readonly_fields = (
        "kind",
        "player_a",
        "player_b",
        "beneficiary",
        "occurrences",
        "value_moved",
        "first_seen_at",
        "last_seen_at",
        "evidence_table",
    )
    date_hierarchy = "last_seen_at"

    @admin.display(description="players")
    def pair(self, flag: CollusionFlag) -> str:
        return f"@{flag.player_a.handle} / @{flag.player_b.handle}"

    @admin.display(description="evidence")
    def evidence_table(self, flag: CollusionFlag) -> str:
        rows = format_html_join(
            "",
            "<tr><td><a href='../../tradeoffer/{}/change/'>#{}</a> take {}</td><td>{}</td>"
            "<td>@{} → @{}</td><td>{} @ ${}</td><td>quote ${}</td><td>${}</td></tr>",
            (
                (
                    take["offer"],
                    take["offer"],
                    take["take"],
                    take["at"],
                    take["seller"],
                    take["buyer"],
                    take["quantity"],
                    take["price"],
                    take["quote"],
                    take["value_moved_to_seller"],
                )
                for take in flag.evidence.get("takes", [])
            ),
        )
        return format_html(
            "<table><thead><tr><th>Offer</th><th>When</th><th>Shares went</th><th>Trade</th>"
            "<th>Market</th><th>Value to seller</th></tr></thead><tbody>{}</tbody></table>"
            "<p>Window: {} days. Value moved: ${}.</p>",
            rows,
            flag.evidence.get("window_days", ""),
            flag.evidence.get("value_moved", ""),
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(REVIEW) or super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(REVIEW) or super().has_view_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Changing means reviewing: the status and the note, nothing else.
        return request.user.has_perm(REVIEW) or super().has_change_permission(request, obj)
