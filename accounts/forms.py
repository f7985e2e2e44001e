from __future__ import annotations

import zoneinfo
from functools import cache
from typing import Any

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm

from accounts.models import User


@cache
def time_zone_choices() -> list[tuple[str, str]]:
    zones = sorted(zone for zone in zoneinfo.available_timezones() if "/" in zone or zone == "UTC")
    return [(zone, zone.replace("_", " ")) for zone in zones]


class SignupForm(forms.Form):
    handle = forms.CharField(
        max_length=30,
        help_text="Your public tag, like @trader_jo: 3 to 30 of a-z, 0-9 and _.",
        widget=forms.TextInput(
            attrs={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"}
        ),
    )
    email = forms.EmailField(
        max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    display_name = forms.CharField(
        max_length=60, required=False, help_text="Shown next to your handle."
    )
    password = forms.CharField(
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )


class LoginForm(AuthenticationForm):
    """Django's login form, labelled for our handle-or-email backend."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That email or handle and password don't match an account.",
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].label = "Email or handle"
        self.fields["username"].max_length = 254
        self.fields["username"].widget.attrs.update(
            {"autocapitalize": "none", "spellcheck": "false"}
        )


class ProfileForm(forms.Form):
    """The settings page's profile card: who you are, and what your public profile shares."""

    display_name = forms.CharField(max_length=60, required=False)
    email = forms.EmailField(max_length=254)
    time_zone = forms.ChoiceField(
        choices=time_zone_choices, help_text="Times are shown in this zone."
    )
    public_profile = forms.BooleanField(
        required=False,
        label="Make my profile public",
        help_text=(
            "Anyone, even people who are not logged in, can open your profile page: your "
            "name and handle, when you joined, your return and risk figures, your rank, "
            "your net worth over the last year, and how it is split between your stocks "
            "and cash, in percentages. You are ranked on the leaderboard only while it "
            "is public."
        ),
    )
    profile_show_shares = forms.BooleanField(
        required=False,
        label="Show share counts",
        help_text="Also show how many shares of each stock you hold, not only percentages.",
    )
    profile_show_trades = forms.BooleanField(
        required=False,
        label="Show recent trades",
        help_text=(
            "Also show your last 10 buys and sells, trades with other players included: "
            "date, stock, number of shares and price. It never says who the other player was."
        ),
    )

    IDENTITY_FIELDS = ("display_name", "email", "time_zone")
    SHARING_FIELDS = ("public_profile", "profile_show_shares", "profile_show_trades")

    @classmethod
    def for_user(cls, user: User) -> ProfileForm:
        return cls(initial={name: getattr(user, name) for name in cls.base_fields})

    def identity_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.IDENTITY_FIELDS]

    def sharing_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.SHARING_FIELDS]


class DeleteAccountForm(forms.Form):
    password = forms.CharField(
        strip=False,
        label="Your password",
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError("That is not your password.")
        return password
