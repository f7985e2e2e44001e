"""Replays recorded HTTP responses (tests/fixtures/providers/*.json) through
httpx.MockTransport, so the real clients run end to end without the network."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "providers"

# An answer: a status with a fixture file name (or None for an empty body), or an
# exception to raise as the network would.
Answer = tuple[int, str | None] | Exception


def recorded(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


class RecordedSource:
    """Routes by URL path. Each route plays its answers in order, repeating the last."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Answer]] = {}
        self.requests: list[httpx.Request] = []

    def on(self, path: str, *answers: Answer) -> RecordedSource:
        self.routes[path] = list(answers)
        return self

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r.url.path == path)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answers = self.routes.get(request.url.path)
        if not answers:
            return httpx.Response(404, json={"error": f"no recording for {request.url.path}"})
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        status, fixture = answer
        if fixture is None:
            return httpx.Response(status)
        return httpx.Response(
            status,
            content=(FIXTURES / fixture).read_bytes(),
            headers={"Content-Type": "application/json"},
        )

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


class Clock:
    """The breaker's and the budget's clock, moved by the test instead of waited for."""

    def __init__(self, now: float = 1_741_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def no_sleep(record: list[float]) -> Callable[[float], None]:
    return record.append
