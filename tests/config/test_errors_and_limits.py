from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.urls("tests.config.urls_failing")
def test_a_server_error_gets_the_friendly_500_page_without_internals(client):
    client.raise_request_exception = False
    response = client.get("/boom/")
    assert response.status_code == 500
    assert b"Something went wrong" in response.content
    assert b"Traceback" not in response.content
    assert b"the secret internals" not in response.content


def test_an_unknown_url_gets_the_friendly_404_for_a_logged_in_player_too(player_client):
    response = player_client.get("/stocks-and-bonds/nothing-here/")
    assert response.status_code == 404
    assert b"Page not found" in response.content
    assert b"Back to Bullpen" in response.content


def test_a_body_over_the_limit_gets_413(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = client.post("/healthz", data=b"x" * 2048, content_type="application/json")
    assert response.status_code == 413


def test_a_body_under_the_limit_passes_through(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = client.post("/healthz", data=b"x" * 512, content_type="application/json")
    assert response.status_code == 405  # reached the view, which only answers GET
