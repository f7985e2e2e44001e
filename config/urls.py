from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from config import metrics, views

admin.site.site_header = "Bullpen admin"
admin.site.site_title = "Bullpen admin"
admin.site.index_title = "Run the market and the players"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("accounts/", include("accounts.urls")),
    path("", include("market.urls")),
    path("", include("portfolio.urls")),
    path("", include("trading.urls")),
]

handler400 = "config.views.bad_request"
handler403 = "config.views.permission_denied"
handler404 = "config.views.page_not_found"
handler500 = "config.views.server_error"
