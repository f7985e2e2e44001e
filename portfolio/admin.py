"""Admin: balances are never edited by hand. The ledger is read-only; cash changes go
through `cash_adjust` (the "Adjust cash" page), which posts a ledger entry."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from accounts.admin_forms import StaffAdmin, audit, require_perm
from portfolio.admin_forms import CashAdjustForm
from portfolio.errors import PortfolioError
from portfolio.models import (
    LedgerEntry,
    NetWorthSnapshot,
    Portfolio,
    PortfolioPerformance,
    Position,
    Watchlist,
)
from portfolio.services import cash_adjust


class ReadOnlyAdmin(StaffAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "created_at",
        "portfolio",
        "kind",
        "stock",
        "quantity_delta",
        "price",
        "cash_delta",
        "reference",
    )
    list_filter = ("kind",)
    search_fields = ("reference", "idempotency_key", "portfolio__owner__handle")
    list_select_related = ("portfolio", "stock")
    raw_id_fields = ("portfolio", "stock", "created_by")
    date_hierarchy = "created_at"
    ordering = ("-id",)


class PositionInline(admin.TabularInline):
    model = Position
    fields = ("stock", "quantity", "reserved_quantity", "cost_basis", "realized_pnl")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("stock")


@admin.register(Portfolio)
class PortfolioAdmin(StaffAdmin):
    list_display = ("id", "owner", "name", "cash", "reserved_cash", "starting_cash", "created_at")
    search_fields = ("owner__handle", "owner__email")
    list_select_related = ("owner",)
    raw_id_fields = ("owner",)
    readonly_fields = (
        "owner",
        "cash",
        "reserved_cash",
        "starting_cash",
        "created_at",
        "last_login_net_worth",
        "last_login_at",
        "previous_login_net_worth",
        "previous_login_at",
    )
    inlines = [PositionInline]
    change_form_template = "admin/portfolio/portfolio/change_form.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # portfolios are opened by sign-up (portfolio_open)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self):
        return [
            path(
                "<int:portfolio_id>/adjust-cash/",
                self.admin_site.admin_view(self.adjust_cash_view),
                name="portfolio_portfolio_adjust_cash",
            ),
            *super().get_urls(),
        ]

    def adjust_cash_view(self, request: HttpRequest, portfolio_id: int) -> HttpResponse:
        require_perm(request, "portfolio.adjust_cash")
        portfolio = get_object_or_404(Portfolio.objects.select_related("owner"), pk=portfolio_id)
        form = CashAdjustForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                # The ledger entry and its audit entry commit together or not at all.
                with transaction.atomic():
                    entry = cash_adjust(
                        portfolio=portfolio,
                        amount=form.cleaned_data["amount"],
                        reason=form.cleaned_data["reason"],
                        by=request.user,
                        # One key per form render, so a double submit posts once.
                        idempotency_key=f"adjustment:{request.POST.get('nonce') or uuid.uuid4()}",
                    )
                    audit(
                        request,
                        "portfolio.adjust_cash",
                        portfolio,
                        form.cleaned_data["reason"],
                        amount=form.cleaned_data["amount"],
                        player=portfolio.owner_id,
                        ledger_entry=entry.pk,
                    )
            except PortfolioError as error:
                form.add_error(error.field if error.field in form.fields else None, str(error))
            else:
                messages.success(request, f"Cash adjusted by {form.cleaned_data['amount']}.")
                return redirect(reverse("admin:portfolio_portfolio_change", args=[portfolio.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Adjust cash of {portfolio}",
            "portfolio": portfolio,
            "form": form,
            "nonce": request.POST.get("nonce") or uuid.uuid4().hex,
            "opts": self.model._meta,
        }
        return TemplateResponse(
            request,
            "admin/portfolio/portfolio/adjust_cash.html",
            context,
            status=400 if form.errors else 200,
        )


@admin.register(NetWorthSnapshot)
class NetWorthSnapshotAdmin(ReadOnlyAdmin):
    list_display = ("portfolio", "at", "net_worth", "cash", "net_deposits", "growth", "is_close")
    list_filter = ("is_close",)
    raw_id_fields = ("portfolio",)
    date_hierarchy = "at"


# Both are written only by the snapshot and leaderboard statements: read-only here.
@admin.register(PortfolioPerformance)
class PortfolioPerformanceAdmin(ReadOnlyAdmin):
    list_display = (
        "portfolio",
        "last_at",
        "last_net_worth",
        "growth",
        "peak_growth",
        "max_drawdown",
        "daily_returns",
    )
    raw_id_fields = ("portfolio",)
    search_fields = ("=portfolio__id",)


@admin.register(Watchlist)
class WatchlistAdmin(ReadOnlyAdmin):
    list_display = ("owner", "created_at")
    raw_id_fields = ("owner",)
