from __future__ import annotations

from django.urls import path, re_path

from market import views

app_name = "market"

SYMBOL = r"(?P<symbol>[A-Za-z0-9.\-]{1,12})"

urlpatterns = [
    path("market/", views.index, name="index"),
    path("market/sectors/", views.sectors, name="sectors"),
    path("market/composite/", views.composite, name="composite"),
    path("market/index.json", views.index_chart_json, name="index_chart"),
    re_path(rf"^stocks/{SYMBOL}/$", views.stock, name="stock"),
    re_path(rf"^stocks/{SYMBOL}/chart\.json$", views.chart_json, name="chart"),
]
