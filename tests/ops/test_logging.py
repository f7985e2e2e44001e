"""Structured logs: the request id on every line of a request, the task id in the worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from django.conf import settings

# Runs in a fresh interpreter so LOG_FORMAT=json is read by settings.py as in production.
JSON_LOGGING_SCRIPT = textwrap.dedent(
    """
    import asyncio, logging, os
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django
    django.setup()
    from django.test import AsyncClient, Client, override_settings
    from config.celery import app

    response = Client().get("/no-such-page/", HTTP_X_REQUEST_ID="req-ops-42")
    assert response["X-Request-ID"] == "req-ops-42"
    with override_settings(ROOT_URLCONF="tests.ops.urls"):
        Client().get("/__ops__/log", HTTP_X_REQUEST_ID="req-ops-wsgi")
        # The ASGI path, as under daphne: sync middleware runs in a worker thread.
        asyncio.run(AsyncClient().get("/__ops__/log", headers={"X-Request-ID": "req-ops-asgi"}))

    @app.task(name="ops.log_something")
    def log_something():
        logging.getLogger("bullpen.ops").info("inside the task")

    # What the worker does at start: with our receiver connected, Celery must leave
    # the root logger's JSON handler in place.
    app.log.setup(loglevel="INFO")
    log_something.apply(task_id="task-ops-7")
    logging.getLogger("bullpen.ops").info("outside any task")
    """
)


@pytest.fixture(scope="module")
def json_log_lines() -> list[dict]:
    result = subprocess.run(
        [sys.executable, "-c", JSON_LOGGING_SCRIPT],
        cwd=settings.BASE_DIR,
        env={**os.environ, "LOG_FORMAT": "json", "LOG_LEVEL": "INFO"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("{")]
    assert lines, result.stderr
    return [json.loads(line) for line in lines]


def test_a_request_logs_json_with_its_request_id(json_log_lines):
    not_found = [line for line in json_log_lines if line["name"] == "django.request"]
    assert not_found, json_log_lines
    assert not_found[0]["request_id"] == "req-ops-42"
    assert not_found[0]["levelname"] == "WARNING"
    assert "Not Found" in not_found[0]["message"]


def test_lines_logged_inside_a_view_carry_the_request_id(json_log_lines):
    inside = [line["request_id"] for line in json_log_lines if line["message"] == "inside the view"]
    assert inside == ["req-ops-wsgi", "req-ops-asgi"]


def test_the_worker_logs_json_with_the_task_id(json_log_lines):
    inside = [line for line in json_log_lines if line["message"] == "inside the task"]
    assert inside, json_log_lines
    assert inside[0]["task_id"] == "task-ops-7"
    assert inside[0]["task_name"] == "ops.log_something"


def test_lines_outside_a_task_have_no_task_id(json_log_lines):
    outside = [line for line in json_log_lines if line["message"] == "outside any task"]
    assert outside and "task_id" not in outside[0]
    assert outside[0]["request_id"] == "-"


@pytest.mark.django_db
def test_the_request_id_from_the_proxy_is_echoed(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="lb-abc-123")
    assert response["X-Request-ID"] == "lb-abc-123"


@pytest.mark.django_db
def test_a_request_without_an_id_gets_a_fresh_one(client):
    first = client.get("/healthz")["X-Request-ID"]
    second = client.get("/healthz")["X-Request-ID"]
    assert len(first) == 32 and int(first, 16) >= 0
    assert first != second


@pytest.mark.django_db
def test_an_oversized_request_id_is_cut_to_64_characters(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="x" * 500)
    assert response["X-Request-ID"] == "x" * 64
