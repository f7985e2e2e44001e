from __future__ import annotations

from django.urls import path

from portfolio import dashboard_views, leaderboard_views, profile_views, views

urlpatterns = [
    path("", dashboard_views.dashboard, name="dashboard"),
    path("portfolio/", views.portfolio_detail, name="portfolio"),
    path("portfolio/performance/", views.performance, name="performance"),
    path("portfolio/open/", views.portfolio_open_view, name="portfolio_open"),
    path("portfolio/statement.csv", views.statement, name="statement"),
    path("watchlist/", views.watchlist, name="watchlist"),
    path("watchlist/add/", views.watchlist_add, name="watchlist_add"),
    path("watchlist/remove/", views.watchlist_remove, name="watchlist_remove"),
    path("leaderboard/", leaderboard_views.leaderboard, name="leaderboard"),
    path("u/<str:handle>/", profile_views.profile, name="profile"),
]
