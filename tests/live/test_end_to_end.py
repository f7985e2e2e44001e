"""End to end, nothing faked: a real daphne, a real Celery worker and beat ticking the
simulated market every second, the test Redis and PostgreSQL, and Chromium. A player
with positions opens /portfolio/ and watches the prices and the net worth move without
a reload; a visitor finds the public players on the leaderboard beat published."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings

from portfolio.services import portfolio_open
from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, DEFAULT_TIMEOUT_MS
from tests.factories import UserFactory
from tests.live.conftest import buy

BASE_DIR = Path(settings.BASE_DIR)
pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _test_database_url() -> str:
    """DATABASE_URL with pytest-django's test database in place of the real one (inside
    a transactional test, settings NAME is the test database)."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    name = settings.DATABASES["default"]["NAME"]
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def _wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("daphne did not start")


class Stack:
    """daphne, a Celery worker and beat, as subprocesses on the test database and Redis."""

    def __init__(self, tmp_path: Path, daphne_args: tuple[str, ...] = ()) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tmp_path = tmp_path
        self.env = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="config.settings",
            DATABASE_URL=_test_database_url(),
            REDIS_URL=os.environ["REDIS_URL"],
            MARKET_TICK_SECONDS="1",
            MARKET_PROVIDER="simulated",
            CELERY_TASK_ALWAYS_EAGER="false",
        )
        python = sys.executable
        self.commands = {
            "daphne": [python, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port)]
            + [*daphne_args, "config.asgi:application"],
            "worker": [python, "-m", "celery", "-A", "config", "worker", "--pool=solo"]
            + ["--concurrency=1", "--loglevel=WARNING"],
            "beat": [python, "-m", "celery", "-A", "config", "beat", "--loglevel=WARNING"]
            + ["--schedule", str(tmp_path / "beat-schedule")],
        }
        self.processes: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}

    def start(self, name: str) -> None:
        self.logs[name] = self.tmp_path / f"{name}.log"
        self.processes[name] = subprocess.Popen(
            self.commands[name],
            cwd=BASE_DIR,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=self.logs[name].open("a"),
        )
        if name == "daphne":
            _wait_for_port(self.port, self.processes[name], self.logs[name])

    def stop(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)
        for name, log in self.logs.items():
            text = log.read_text() if log.exists() else ""
            if "Traceback" in text:
                print(f"--- {name} log ---\n{text[-3000:]}")


@contextlib.contextmanager
def _running(stack: Stack) -> Iterator[Stack]:
    """The whole stack running; torn down before pytest-django flushes the database."""
    try:
        for name in ("daphne", "worker", "beat"):
            stack.start(name)
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture
def live_stack(transactional_db, tmp_path) -> Iterator[Stack]:
    with _running(Stack(tmp_path)) as stack:
        yield stack


@pytest.fixture
def chromium_page() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"browser test skipped: {CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        pytest.skip(f"browser test skipped: Playwright is not installed ({error})")
    # Playwright's sync API runs an event loop on this thread; the ORM calls in the
    # test body are not made from it (see tests/browser_support.py).
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context()
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()
            browser.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def _money(text: str) -> Decimal:
    return Decimal(re.sub(r"[^0-9.\-]", "", text))


def test_prices_and_net_worth_move_on_the_portfolio_page_without_a_reload(
    live_stack, chromium_page, client, make_stock
):
    stocks = [make_stock(symbol, "100.0000") for symbol in ("AAPL", "MSFT", "NVDA")]
    player = UserFactory()
    for stock in stocks:
        buy(player, stock, 50)
    client.force_login(player)
    session_key = client.cookies[settings.SESSION_COOKIE_NAME].value

    context = chromium_page
    context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": session_key, "url": live_stack.url}]
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # htmx logs an out-of-band span without a target on the page as a console error.
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.goto(f"{live_stack.url}/portfolio/")
    page.wait_for_selector("#live-status[data-status='live']", timeout=20_000)
    first_prices = {s.symbol: page.inner_text(f"#pos-px-{s.symbol}") for s in stocks}
    first_net_worth = page.inner_text("#pf-networth")
    first_header = page.inner_text("#hdr-networth")
    page.evaluate("window.__sameDocument = true")

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        prices = {s.symbol: page.inner_text(f"#pos-px-{s.symbol}") for s in stocks}
        if prices != first_prices and page.inner_text("#pf-networth") != first_net_worth:
            break
        page.wait_for_timeout(500)

    assert prices != first_prices, "no position price moved within 20 s"
    net_worth = page.inner_text("#pf-networth")
    assert net_worth != first_net_worth
    # The header follows, and equals the page's net worth once both come from one push.
    page.wait_for_function(
        "() => document.querySelector('#hdr-networth').textContent === document.querySelector('#pf-networth').textContent"
    )
    assert page.inner_text("#hdr-networth") != first_header
    # Cash did not move (no trade), so the net worth moved by the holdings' value only.
    assert _money(page.inner_text("#pf-cash")) == _money(page.inner_text("#hdr-cash"))
    # A moved price flashes up or down.
    page.wait_for_selector("[id^='pos-px-'].flash-up, [id^='pos-px-'].flash-down", timeout=10_000)
    # Still the same document: nothing reloaded the page.
    assert page.evaluate("window.__sameDocument === true")
    assert errors == []


def test_the_page_reconnects_after_a_server_restart_and_says_so(
    live_stack, chromium_page, client, make_stock
):
    aapl = make_stock("AAPL", "100.0000")
    player = UserFactory()
    buy(player, aapl, 50)
    client.force_login(player)
    context = chromium_page
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_stack.url,
            }
        ]
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live_stack.url}/portfolio/")
    page.wait_for_selector("#live-status[data-status='live']", timeout=20_000)
    page.evaluate("window.__sameDocument = true")
    page.evaluate(
        "document.getElementById('portfolio-live').setAttribute('data-before-restart', '1')"
    )

    live_stack.stop("daphne")
    page.wait_for_selector("#live-status[data-status='reconnecting']", timeout=10_000)
    assert page.inner_text("#live-status") == "reconnecting"

    live_stack.start("daphne")
    page.wait_for_selector("#live-status[data-status='live']", timeout=30_000)
    before = page.inner_text("#pos-px-AAPL")
    page.wait_for_function(
        "before => document.querySelector('#pos-px-AAPL').textContent !== before",
        arg=before,
        timeout=15_000,
    )
    # After the reconnect the live regions were re-fetched (a fresh element, no marker).
    page.wait_for_function(
        "() => !document.getElementById('portfolio-live').hasAttribute('data-before-restart')",
        timeout=10_000,
    )
    assert page.evaluate("window.__sameDocument === true")
    assert errors == []


def test_the_page_reconnects_after_the_server_closes_the_socket_cleanly(
    transactional_db, tmp_path, chromium_page, client, make_stock
):
    """daphne closes sockets older than --websocket_timeout with a clean close, which
    htmx's ws extension does not retry: live.js must."""
    make_stock("AAPL", "100.0000")
    client.force_login(UserFactory())
    stack = Stack(tmp_path, daphne_args=("--websocket_timeout", "3"))
    try:
        stack.start("daphne")
        chromium_page.add_cookies(
            [
                {
                    "name": settings.SESSION_COOKIE_NAME,
                    "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                    "url": stack.url,
                }
            ]
        )
        page = chromium_page.new_page()
        page.goto(f"{stack.url}/market/")
        page.wait_for_selector("#live-status[data-status='live']", timeout=20_000)
        page.evaluate(
            """() => {
              window.__closes = [];
              window.__opens = 0;
              document.addEventListener('htmx:wsClose', e => window.__closes.push(e.detail.event.code));
              document.addEventListener('htmx:wsOpen', () => { window.__opens += 1; });
            }"""
        )
        page.wait_for_function("() => window.__opens >= 1", timeout=20_000)
        closes = page.evaluate("window.__closes")
        assert closes and all(code not in (1006, 1011, 1012, 1013) for code in closes)
        page.wait_for_selector("#live-status[data-status='live']", timeout=5_000)
        # Close the tab first: daphne waits for open sockets before it exits.
        page.close()
    finally:
        stack.stop_all()


@pytest.fixture
def leaderboard_stack(transactional_db, tmp_path) -> Iterator[Stack]:
    """The whole stack with beat recomputing the leaderboard every two seconds."""
    stack = Stack(tmp_path)
    stack.env["LEADERBOARD_RECOMPUTE_SECONDS"] = "2"
    with _running(stack):
        yield stack


def test_beat_ranks_public_players_and_a_visitor_browses_the_board(
    leaderboard_stack, chromium_page, make_stock
):
    stock = make_stock("AAPL", "100.0000")
    leader = UserFactory(handle="lena_lead", display_name="Lena Lead", public_profile=True)
    buy(leader, stock, 500)
    portfolio_open(owner=UserFactory(handle="cash_only", public_profile=True))
    portfolio_open(owner=UserFactory(handle="quiet_one"))  # private: never listed

    page = chromium_page.new_page()
    # Nothing is seeded into the board: the worker's beat task has to publish it.
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        page.goto(f"{leaderboard_stack.url}/leaderboard/")
        if page.locator("#board-table").count():
            break
        page.wait_for_timeout(1000)
    table = page.locator("#board-table")
    assert table.count(), "beat did not publish the leaderboard within 40 s"
    assert table.get_by_role("link", name="Lena Lead").is_visible()
    assert "@cash_only" in table.inner_text()
    assert "quiet_one" not in table.inner_text()

    # The views swap in place over htmx; a new player has no Sharpe ratio yet.
    page.evaluate("window.__sameDocument = true")
    page.get_by_role("link", name="Sharpe ratio").click()
    page.wait_for_selector("#board-empty")
    assert "Nobody has a Sharpe ratio yet" in page.inner_text("#board-empty")
    assert page.url.endswith("?by=sharpe")
    page.get_by_role("link", name="Total return").click()
    page.locator("#board-table").get_by_role("link", name="Lena Lead").click()
    page.wait_for_url("**/u/lena_lead/")
    assert page.locator("h1").inner_text() == "Lena Lead"
