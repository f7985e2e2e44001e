from __future__ import annotations

from django.urls import path

from trading import views

app_name = "trading"

urlpatterns = [
    path("orders/", views.orders, name="orders"),
    path("orders/new/", views.order_new, name="order_new"),
    path("orders/<int:order_id>/", views.order_detail, name="order_detail"),
    path("orders/<int:order_id>/cancel/", views.order_cancel_view, name="order_cancel"),
]
