"""A request id on every log line, so one request's lines can be found together."""

from __future__ import annotations

import contextvars
import logging
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        request_id = request_id_var.get()
        if request_id == "-":
            # Django logs a 4xx response ("Not Found: …") after the middleware chain
            # has returned; the record carries the request, which carries its id.
            request = getattr(record, "request", None)
            request_id = getattr(request, "request_id", "-")
        record.request_id = request_id
        return True


class RequestIdMiddleware:
    """Takes X-Request-ID from the proxy or makes one, and echoes it in the response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming[:64] if incoming.isascii() and incoming else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


class TaskIdFilter(logging.Filter):
    """In the Celery worker, the running task's id and name on each line it logs.

    The JSON formatter writes any extra attribute, so lines outside a task simply
    have no task_id.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        from celery import current_task

        if current_task and current_task.request.id:
            record.task_id = current_task.request.id
            record.task_name = current_task.name
        return True


def keep_django_logging(**kwargs: object) -> None:
    """Receiver for celery.signals.setup_logging: its presence stops the worker from
    replacing the root logger's handlers, so the worker logs through settings.LOGGING
    (JSON in production) like the web process."""
