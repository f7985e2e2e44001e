"""Production settings pass `check --deploy`; the CSP and the templates allow no inline script."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import SystemCheckError

BASE_DIR = Path(settings.BASE_DIR)

PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "SECURE": "true",
    "DEBUG": "false",
    "ALLOWED_HOSTS": "bullpen.example.com",
}


def run_manage(*args: str, **extra_env: str | None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **PRODUCTION_ENV, **extra_env}
    env.pop("SECRET_KEY_FALLBACKS", None)
    env = {name: value for name, value in env.items() if value is not None}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_under_production_environment_variables():
    # A subprocess, because the production values are derived from the environment
    # when settings.py is imported: this checks that derivation, not just Django.
    result = run_manage(
        "check", "--deploy", "--fail-level", "WARNING", SECRET_KEY=secrets.token_urlsafe(64)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNINGS" not in result.stderr


def test_production_refuses_to_start_with_the_development_secret_key():
    result = run_manage("check", SECRET_KEY=None)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_the_development_settings_do_warn_so_the_check_above_means_something():
    with pytest.raises(SystemCheckError) as raised:
        call_command("check", deploy=True, fail_level="WARNING")
    assert "security.W004" in str(raised.value)  # no HSTS in development


def test_the_csrf_cookie_is_http_only_because_htmx_reads_the_token_from_the_page():
    assert settings.CSRF_COOKIE_HTTPONLY is True
    assert settings.SESSION_COOKIE_HTTPONLY is True
    assert settings.SESSION_COOKIE_SAMESITE == "Lax"


def directives(header: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for part in header.split(";"):
        name, *sources = part.split()
        parsed[name] = sources
    return parsed


@pytest.mark.django_db
def test_pages_carry_a_csp_without_inline_script_and_the_security_headers(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    policy = directives(response["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"]
    assert policy["default-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]
    assert policy["form-action"] == ["'self'"]
    for directive in ("script-src", "style-src", "default-src"):
        assert "'unsafe-inline'" not in policy[directive]
        assert "'unsafe-eval'" not in policy[directive]
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
def test_error_pages_carry_the_csp_too(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]


# --- The template scan: keeps future templates within the CSP ------------------
TAG = re.compile(r"<(?P<name>[a-zA-Z][\w-]*)(?P<attrs>(?:[^>\"']|\"[^\"]*\"|'[^']*')*)>", re.S)
SCRIPT = re.compile(r"<script(?P<attrs>[^>]*)>(?P<body>.*?)</script\s*>", re.S | re.I)
STYLE_BLOCK = re.compile(r"<style[^>]*>(?P<body>.*?)</style\s*>", re.S | re.I)
EVENT_HANDLER = re.compile(r"(?:^|\s)on[a-z]+\s*=", re.I)
HX_ON = re.compile(r"(?:^|\s)(?:data-)?hx-on", re.I)
INLINE_STYLE = re.compile(r"(?:^|\s)style\s*=", re.I)
JS_URL = re.compile(r"=\s*[\"']?\s*javascript:", re.I)
COMMENT = re.compile(r"{#.*?#}|{%\s*comment\s*%}.*?{%\s*endcomment\s*%}|<!--.*?-->", re.S)


def csp_violations(source: str) -> list[str]:
    source = COMMENT.sub("", source)
    found = []
    for script in SCRIPT.finditer(source):
        data_block = re.search(r"type\s*=\s*[\"']application/(?:ld\+)?json", script["attrs"], re.I)
        if script["body"].strip() and not data_block:
            found.append("inline <script> body")
        if not script["body"].strip() and "src=" not in script["attrs"]:
            found.append("<script> without src")
    if any(block["body"].strip() for block in STYLE_BLOCK.finditer(source)):
        found.append("inline <style> block")
    for tag in TAG.finditer(source):
        attrs = tag["attrs"]
        if EVENT_HANDLER.search(attrs):
            found.append(f"on*= handler in <{tag['name']}>")
        if HX_ON.search(attrs):
            found.append(f"hx-on in <{tag['name']}>")
        if INLINE_STYLE.search(attrs):
            found.append(f"style= attribute in <{tag['name']}> (style-src is 'self')")
        if JS_URL.search(attrs):
            found.append(f"javascript: URL in <{tag['name']}>")
    return found


def all_templates() -> list[Path]:
    return sorted((BASE_DIR / "templates").rglob("*.html"))


def test_the_scan_catches_what_the_csp_would_block():
    assert csp_violations("<script>alert(1)</script>") == ["inline <script> body"]
    assert csp_violations('<button onclick="go()">Go</button>') == ["on*= handler in <button>"]
    assert csp_violations('<a hx-on:click="x()">x</a>') == ["hx-on in <a>"]
    assert csp_violations('<div data-hx-on--after-swap="x()"></div>') == ["hx-on in <div>"]
    assert csp_violations('<p style="color:red">x</p>')
    assert csp_violations('<a href="javascript:void(0)">x</a>')
    assert csp_violations("<style>p { color: red }</style>")
    # Allowed: external scripts, JSON data blocks, words that merely start with "on".
    assert csp_violations('<script src="/static/js/app.js" defer></script>') == []
    assert csp_violations('<script id="d" type="application/json">{"a": 1}</script>') == []
    assert csp_violations('<input name="online" data-once="1" value="onboard">') == []
    assert csp_violations("{# <script>alert(1)</script> #}") == []


def test_templates_exist_to_scan():
    assert len(all_templates()) >= 3


@pytest.mark.parametrize(
    "template", all_templates(), ids=lambda path: str(path.relative_to(BASE_DIR / "templates"))
)
def test_no_template_needs_inline_script_or_style(template: Path):
    assert csp_violations(template.read_text()) == []
