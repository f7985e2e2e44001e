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
    display_name = forms.CharField(max_length=60, required=False)
    email = forms.EmailField(max_length=254)
    public_profile = forms.BooleanField(
        required=False,
        label="Public profile",
        help_text="Let anyone see your profile page and performance.",
    )
    time_zone = forms.ChoiceField(
        choices=time_zone_choices, help_text="Times are shown in this zone."
    )

    @classmethod
    def for_user(cls, user: User) -> ProfileForm:
        return cls(
            initial={
                "display_name": user.display_name,
                "email": user.email,
                "public_profile": user.public_profile,
                "time_zone": user.time_zone,
            }
        )


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
