"""Rotating SECRET_KEY with SECRET_KEY_FALLBACKS: what survives, and for how long.

Sessions are stored in the database; what the key protects is the session's copy of
the password hash's HMAC (so a password change ends other sessions), signed values
and password-reset tokens.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.conf import settings as live_settings
from django.contrib.auth.tokens import default_token_generator
from django.core import signing

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.ops.urls")]

OLD_KEY = "old-key-" + "o" * 50
NEW_KEY = "new-key-" + "n" * 50


def whoami(client) -> str:
    response = client.get("/__ops__/whoami")
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def logged_in_under_old_key(client, player, settings):
    settings.SECRET_KEY = OLD_KEY
    settings.SECRET_KEY_FALLBACKS = []
    client.force_login(player)
    assert whoami(client) == player.handle
    return client


def test_a_session_survives_a_rotation_while_the_old_key_is_a_fallback(
    logged_in_under_old_key, player, settings
):
    settings.SECRET_KEY = NEW_KEY
    settings.SECRET_KEY_FALLBACKS = [OLD_KEY]
    assert whoami(logged_in_under_old_key) == player.handle


def test_a_session_not_seen_during_the_window_ends_when_the_fallback_goes(
    logged_in_under_old_key, settings
):
    settings.SECRET_KEY = NEW_KEY
    settings.SECRET_KEY_FALLBACKS = []
    assert whoami(logged_in_under_old_key) == "anonymous"


def test_a_session_seen_during_the_window_is_moved_to_the_new_key(
    logged_in_under_old_key, player, settings
):
    settings.SECRET_KEY = NEW_KEY
    settings.SECRET_KEY_FALLBACKS = [OLD_KEY]
    assert whoami(logged_in_under_old_key) == player.handle  # re-signed here
    settings.SECRET_KEY_FALLBACKS = []
    assert whoami(logged_in_under_old_key) == player.handle


def test_a_password_reset_link_survives_only_while_the_old_key_is_a_fallback(player, settings):
    settings.SECRET_KEY = OLD_KEY
    settings.SECRET_KEY_FALLBACKS = []
    token = default_token_generator.make_token(player)

    settings.SECRET_KEY = NEW_KEY
    settings.SECRET_KEY_FALLBACKS = [OLD_KEY]
    assert default_token_generator.check_token(player, token)

    settings.SECRET_KEY_FALLBACKS = []
    assert not default_token_generator.check_token(player, token)


def test_signed_values_follow_the_same_rule(settings):
    settings.SECRET_KEY = OLD_KEY
    settings.SECRET_KEY_FALLBACKS = []
    signed = signing.dumps({"portfolio": 7})

    settings.SECRET_KEY = NEW_KEY
    settings.SECRET_KEY_FALLBACKS = [OLD_KEY]
    assert signing.loads(signed) == {"portfolio": 7}

    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(signing.BadSignature):
        signing.loads(signed)


def test_the_fallbacks_are_read_from_the_environment():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from config import settings; print(settings.SECRET_KEY_FALLBACKS)",
        ],
        cwd=live_settings.BASE_DIR,
        env={"SECRET_KEY_FALLBACKS": f"{OLD_KEY},another-old-key", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str([OLD_KEY, "another-old-key"])
