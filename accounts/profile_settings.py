"""Saving the settings page's profile card: the profile fields and what a public profile
shares, in one transaction.

It wraps `services.user_profile_update` rather than changing its signature, which the
sign-up and seed code call too; the two sharing choices are saved next to it.
"""

from __future__ import annotations

from django.db import transaction

from accounts import services
from accounts.models import User


def profile_settings_save(
    *,
    user: User,
    display_name: str,
    email: str,
    public_profile: bool,
    time_zone: str,
    profile_show_shares: bool,
    profile_show_trades: bool,
) -> User:
    """Save the profile and the sharing choices together: a refused email or time zone
    (an `AccountsError`, raised by `user_profile_update`) saves neither."""
    with transaction.atomic():
        services.user_profile_update(
            user=user,
            display_name=display_name,
            email=email,
            public_profile=public_profile,
            time_zone=time_zone,
        )
        user.profile_show_shares = profile_show_shares
        user.profile_show_trades = profile_show_trades
        user.save(update_fields=["profile_show_shares", "profile_show_trades"])
    return user
