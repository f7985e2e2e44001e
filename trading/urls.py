from __future__ import annotations

from django.urls import path

from trading import offer_views, views

app_name = "trading"

urlpatterns = [
    path("orders/", views.orders, name="orders"),
    path("orders/new/", views.order_new, name="order_new"),
    path("orders/<int:order_id>/", views.order_detail, name="order_detail"),
    path("orders/<int:order_id>/cancel/", views.order_cancel_view, name="order_cancel"),
    path("offers/", offer_views.offers, name="offers"),
    path("offers/new/", offer_views.offer_new, name="offer_new"),
    path("offers/<int:offer_id>/", offer_views.offer_detail, name="offer_detail"),
    path("offers/<int:offer_id>/accept/", offer_views.offer_accept_view, name="offer_accept"),
    path("offers/<int:offer_id>/decline/", offer_views.offer_decline_view, name="offer_decline"),
    path("offers/<int:offer_id>/cancel/", offer_views.offer_cancel_view, name="offer_cancel"),
    path("offers/<int:offer_id>/counter/", offer_views.offer_counter_view, name="offer_counter"),
]
