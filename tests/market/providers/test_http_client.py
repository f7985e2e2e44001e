"""The guarded HTTP client: retries with backoff, timeouts, circuit breaker, budget.

Breaker and budget state is in the real (embedded) Redis; the source is recorded
responses replayed through httpx.MockTransport, or a real socket that never answers.
"""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest

from market.providers.base import ProviderError
from market.providers.http_client import BudgetExhausted, CircuitOpen, GuardedClient
from tests.market.providers.recorded import Clock, RecordedSource

PATH = "/v1/thing"
OK = (200, "finnhub_quote_AAPL.json")


@pytest.fixture(autouse=True)
def _policy(settings):
    settings.MARKET_HTTP_RETRIES = 2
    settings.MARKET_HTTP_BACKOFF = 0.5
    settings.MARKET_BREAKER_FAILURES = 3
    settings.MARKET_BREAKER_OPEN_SECONDS = 60


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make_client(
    source: RecordedSource, clock: Clock, sleeps: list[float], **options
) -> GuardedClient:
    options.setdefault("budget_per_minute", 100)
    return GuardedClient(
        "testsource",
        base_url="https://source.test",
        transport=source.transport,
        clock=clock,
        sleep=sleeps.append,
        **options,
    )


def trip(client: GuardedClient) -> None:
    """Fail as many calls in a row as it takes to open the circuit (3 here)."""
    for _ in range(3):
        with pytest.raises(ProviderError, match="HTTP 500"):
            client.get_json(PATH)


def test_a_server_error_is_retried_with_growing_backoff_until_it_succeeds(clock, sleeps, caplog):
    source = RecordedSource().on(PATH, (500, None), (503, None), OK)
    client = make_client(source, clock, sleeps)
    assert client.get_json(PATH)["c"] == 238.03
    assert source.count(PATH) == 3
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 1.0  # initial 0.5 s plus up to 0.5 s of jitter
    assert 1.0 <= sleeps[1] <= 1.5  # doubled
    assert "retrying" in caplog.text


def test_rate_limiting_and_connection_errors_are_retried_too(clock, sleeps):
    source = RecordedSource().on(
        PATH, (429, "finnhub_error_429.json"), httpx.ConnectError("connection refused"), OK
    )
    assert make_client(source, clock, sleeps).get_json(PATH)["pc"] == 241.84
    assert source.count(PATH) == 3


def test_it_gives_up_after_the_configured_retries(clock, sleeps):
    source = RecordedSource().on(PATH, (502, None))
    with pytest.raises(ProviderError, match="HTTP 502"):
        make_client(source, clock, sleeps).get_json(PATH)
    assert source.count(PATH) == 3  # one try and two retries


def test_a_client_error_is_not_retried(clock, sleeps):
    source = RecordedSource().on(PATH, (404, "yahoo_chart_not_found.json"))
    with pytest.raises(ProviderError, match="404"):
        make_client(source, clock, sleeps).get_json(PATH)
    assert source.count(PATH) == 1
    assert sleeps == []


def test_a_body_that_is_not_json_is_a_provider_error(clock, sleeps):
    source = RecordedSource().on(PATH, (200, None))
    with pytest.raises(ProviderError, match="not JSON"):
        make_client(source, clock, sleeps).get_json(PATH)


class SilentServer:
    """A real TCP server that accepts connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        try:
            while True:
                conn, _ = self.sock.accept()
                self.held.append(conn)
        except OSError:
            return

    def close(self) -> None:
        for conn in self.held:
            conn.close()
        self.sock.close()


def test_a_source_that_never_answers_times_out_and_is_retried(clock, sleeps):
    server = SilentServer()
    try:
        client = GuardedClient(
            "silent",
            base_url=f"http://127.0.0.1:{server.port}",
            budget_per_minute=100,
            timeout=0.2,
            retries=1,
            clock=clock,
            sleep=sleeps.append,
        )
        started = time.monotonic()
        with pytest.raises(ProviderError, match="ReadTimeout"):
            client.get_json(PATH)
        assert time.monotonic() - started < 3
        assert len(sleeps) == 1  # the timeout was retried once
        assert len(server.held) == 2
    finally:
        server.close()


def test_the_timeouts_come_from_the_settings(settings, clock, sleeps):
    settings.MARKET_HTTP_TIMEOUT = 7.0
    client = make_client(RecordedSource(), clock, sleeps)
    assert client.http.timeout.read == 7.0
    assert client.http.timeout.connect == 3.0


def test_the_circuit_opens_after_repeated_failures_and_then_rejects_without_sending(
    clock, sleeps, caplog
):
    source = RecordedSource().on(PATH, (500, None))
    client = make_client(source, clock, sleeps, retries=0)
    trip(client)
    assert "circuit open" in caplog.text
    sent = source.count(PATH)
    started = time.monotonic()
    with pytest.raises(CircuitOpen):
        client.get_json(PATH)
    assert time.monotonic() - started < 0.1
    assert source.count(PATH) == sent


def test_the_circuit_is_shared_by_every_worker(clock, sleeps):
    failing = RecordedSource().on(PATH, (500, None))
    worker_one = make_client(failing, clock, sleeps, retries=0)
    trip(worker_one)
    healthy = RecordedSource().on(PATH, OK)
    worker_two = make_client(healthy, clock, sleeps)
    with pytest.raises(CircuitOpen):
        worker_two.get_json(PATH)
    assert healthy.count(PATH) == 0


def test_after_the_open_period_one_probe_closes_the_circuit_when_it_succeeds(clock, sleeps):
    source = RecordedSource().on(PATH, (500, None), (500, None), (500, None), OK)
    client = make_client(source, clock, sleeps, retries=0)
    trip(client)
    clock.advance(59)
    with pytest.raises(CircuitOpen):
        client.get_json(PATH)
    clock.advance(2)
    assert client.get_json(PATH)["c"] == 238.03  # the probe
    assert not client.breaker.is_open
    assert client.get_json(PATH)["c"] == 238.03  # closed again: calls flow


def test_a_failed_probe_opens_the_circuit_again_at_once(clock, sleeps):
    source = RecordedSource().on(PATH, (500, None))
    client = make_client(source, clock, sleeps, retries=0)
    trip(client)
    clock.advance(61)
    with pytest.raises(ProviderError, match="HTTP 500"):
        client.get_json(PATH)  # the probe fails...
    with pytest.raises(CircuitOpen):
        client.get_json(PATH)  # ...and the next call is refused without waiting for N failures
    assert client.breaker.is_open


def test_only_one_probe_at_a_time_while_half_open(clock, sleeps):
    source = RecordedSource().on(PATH, (500, None))
    client = make_client(source, clock, sleeps, retries=0)
    trip(client)
    clock.advance(61)
    client.breaker.admit()  # a worker takes the probe...
    with pytest.raises(CircuitOpen):
        client.breaker.admit()  # ...and another is turned away while it runs


def test_successes_reset_the_failure_count(clock, sleeps):
    source = RecordedSource().on(PATH, (500, None), (500, None), OK, (500, None), (500, None), OK)
    client = make_client(source, clock, sleeps, retries=0)
    for _ in range(2):
        for expect_failure in (True, True, False):
            if expect_failure:
                with pytest.raises(ProviderError):
                    client.get_json(PATH)
            else:
                client.get_json(PATH)
    assert not client.breaker.is_open


def test_requests_over_budget_raise_instead_of_being_sent(clock, sleeps):
    source = RecordedSource().on(PATH, OK)
    client = make_client(source, clock, sleeps, budget_per_minute=3)
    for _ in range(3):
        client.get_json(PATH)
    with pytest.raises(BudgetExhausted, match="3/minute"):
        client.get_json(PATH)
    assert source.count(PATH) == 3
    assert not client.breaker.is_open  # our own limit is not the source failing
    clock.advance(20)  # 3 a minute: one token back every 20 seconds
    client.get_json(PATH)
    with pytest.raises(BudgetExhausted):
        client.get_json(PATH)


def test_the_budget_is_shared_by_every_worker_and_counts_retries(clock, sleeps):
    flaky = RecordedSource().on(PATH, (500, None), OK)
    worker_one = make_client(flaky, clock, sleeps, budget_per_minute=3)
    worker_one.get_json(PATH)  # two requests: the failure and its retry
    other = RecordedSource().on(PATH, OK)
    worker_two = make_client(other, clock, sleeps, budget_per_minute=3)
    worker_two.get_json(PATH)
    with pytest.raises(BudgetExhausted):
        worker_two.get_json(PATH)
    assert other.count(PATH) == 1
