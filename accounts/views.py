"""Account pages: sign-up, log-in, settings, sessions, password and deletion."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST
from django_ratelimit.decorators import ratelimit

from accounts import errors, selectors, services
from accounts.backends import axes_username
from accounts.forms import DeleteAccountForm, LoginForm, ProfileForm, SignupForm

# The backend named when we log a player in ourselves (after sign-up).
LOGIN_BACKEND = "accounts.backends.HandleOrEmailBackend"


def _rate(setting_name: str) -> Callable[[str, HttpRequest], str]:
    # Read at request time, so tests and operators can change the rate without a reload.
    return lambda group, request: getattr(settings, setting_name)


def _login_username_key(group: str, request: HttpRequest) -> str:
    return axes_username(request, {"username": request.POST.get("username", "")})


def _reset_email_key(group: str, request: HttpRequest) -> str:
    return request.POST.get("email", "").strip().lower()


def _show_error(form: Any, error: errors.AccountsError) -> None:
    field = error.field if error.field in form.fields else None
    for message in error.messages:
        form.add_error(field, message)


def _safe_next(request: HttpRequest) -> str | None:
    """The ?next= a login or sign-up link carried, if it stays on this site."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    allowed = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if target and allowed else None


@require_http_methods(["GET", "POST"])
@ratelimit(group="signup-ip", key="ip", rate=_rate("RATELIMIT_SIGNUP_IP"), method="POST")
def signup(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request)
    if request.user.is_authenticated:
        return redirect(next_url or "dashboard")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.user_signup(**form.cleaned_data)
        except errors.AccountsError as error:
            _show_error(form, error)
        else:
            login(request, user, backend=LOGIN_BACKEND)
            messages.success(request, f"Welcome to Bullpen, @{user.handle}!")
            return redirect(next_url or "dashboard")
    status = 400 if request.method == "POST" else 200
    context = {
        "form": form,
        "starting_cash": f"${settings.STARTING_CASH:,.0f}",
        "next": next_url or "",
    }
    return render(request, "accounts/signup.html", context, status=status)


@method_decorator(
    ratelimit(group="login-ip", key="ip", rate=_rate("RATELIMIT_LOGIN_IP"), method="POST"),
    name="dispatch",
)
@method_decorator(
    ratelimit(
        group="login-username",
        key=_login_username_key,
        rate=_rate("RATELIMIT_LOGIN_USERNAME"),
        method="POST",
    ),
    name="dispatch",
)
class LoginView(auth_views.LoginView):
    form_class = LoginForm
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def form_invalid(self, form: Any) -> HttpResponse:
        return self.render_to_response(self.get_context_data(form=form), status=400)


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:settings")

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)  # rotates this session's key
        ended = services.sessions_end(
            user=self.request.user, except_session_key=self.request.session.session_key
        )
        note = f" and logged out {ended} other session{'s' if ended != 1 else ''}" if ended else ""
        messages.success(self.request, f"Password changed{note}.")
        return response

    def form_invalid(self, form: Any) -> HttpResponse:
        return self.render_to_response(self.get_context_data(form=form), status=400)


@method_decorator(
    ratelimit(group="reset-ip", key="ip", rate=_rate("RATELIMIT_PASSWORD_RESET_IP"), method="POST"),
    name="dispatch",
)
@method_decorator(
    ratelimit(
        group="reset-email",
        key=_reset_email_key,
        rate=_rate("RATELIMIT_PASSWORD_RESET_EMAIL"),
        method="POST",
    ),
    name="dispatch",
)
class PasswordResetView(auth_views.PasswordResetView):
    template_name = "accounts/password_reset_form.html"
    email_template_name = "accounts/email/password_reset.txt"
    subject_template_name = "accounts/email/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        # Whoever knew the old password is logged out everywhere.
        services.sessions_end(user=form.user)
        return response


def _settings_page(
    request: HttpRequest,
    *,
    profile_form: ProfileForm | None = None,
    delete_form: DeleteAccountForm | None = None,
    status: int = 200,
) -> HttpResponse:
    context = {
        "profile_form": profile_form or ProfileForm.for_user(request.user),
        "delete_form": delete_form or DeleteAccountForm(user=request.user),
        "sessions": selectors.user_sessions(user=request.user),
        "current_session_key": request.session.session_key,
        "role": selectors.user_role(user=request.user),
    }
    return render(request, "accounts/settings.html", context, status=status)


PROFILE_CARD = "accounts/settings.html#profile"


@login_required
@require_http_methods(["GET", "POST"])
def settings_page(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _settings_page(request)
    form = ProfileForm(request.POST)
    if form.is_valid():
        try:
            services.user_profile_update(user=request.user, **form.cleaned_data)
        except errors.AccountsError as error:
            _show_error(form, error)
        else:
            if request.htmx:
                context = {"profile_form": ProfileForm.for_user(request.user), "saved": True}
                return render(request, PROFILE_CARD, context)
            messages.success(request, "Settings saved.")
            return redirect("accounts:settings")
    if request.htmx:
        return render(request, PROFILE_CARD, {"profile_form": form}, status=400)
    return _settings_page(request, profile_form=form, status=400)


def _sessions_response(request: HttpRequest) -> HttpResponse:
    if request.htmx:
        context = {
            "sessions": selectors.user_sessions(user=request.user),
            "current_session_key": request.session.session_key,
        }
        return render(request, "accounts/settings.html#sessions", context)
    return redirect("accounts:settings")


@login_required
@require_POST
def session_end(request: HttpRequest, session_id: int) -> HttpResponse:
    tracked = request.user.sessions.filter(pk=session_id).only("session_id").first()
    try:
        services.session_end(user=request.user, session_id=session_id)
    except errors.AccountNotAllowed as error:
        messages.error(request, str(error))
        return _sessions_response(request)
    if tracked is not None and tracked.session_id == request.session.session_key:
        # They ended the session they are using: that is a log-out.
        logout(request)
        if request.htmx:
            response = HttpResponse(status=204)
            response["HX-Redirect"] = reverse("accounts:login")
            return response
        return redirect("accounts:login")
    if not request.htmx:
        messages.success(request, "That session has been logged out.")
    return _sessions_response(request)


@login_required
@require_POST
def sessions_end_others(request: HttpRequest) -> HttpResponse:
    ended = services.sessions_end(user=request.user, except_session_key=request.session.session_key)
    if not request.htmx:
        messages.success(request, f"Logged out {ended} other session{'s' if ended != 1 else ''}.")
    return _sessions_response(request)


@login_required
@require_POST
def account_delete(request: HttpRequest) -> HttpResponse:
    form = DeleteAccountForm(request.POST, user=request.user)
    if not form.is_valid():
        return _settings_page(request, delete_form=form, status=400)
    services.user_delete(user=request.user)
    logout(request)
    messages.success(request, "Your account has been deleted. Thanks for playing.")
    return redirect("accounts:login")
