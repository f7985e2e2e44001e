from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_touching_dependencies(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_postgres_and_redis_up(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"postgresql": True, "redis": True}


def test_pages_that_need_a_login_redirect_to_it(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_unknown_url_gets_the_friendly_404_page(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert b"Page not found" in response.content


def test_error_pages_show_no_template_comment_text(client):
    response = client.get("/no-such-page/")
    assert b"{#" not in response.content
    assert b"Standalone" not in response.content
