"""Benchmark of the live price push: N websocket clients on ONE daphne process.

    .venv/bin/python bench/live.py [--clients 1000] [--symbols 500] [--per-client 20]
                                   [--ticks 10] [--interval 2] [--layer core|pubsub|both]

Starts the embedded PostgreSQL (a separate `bench_live` database, migrated and seeded
with the symbols) and its own embedded Redis unless DATABASE_URL / REDIS_URL are set,
then for each channel layer: one daphne subprocess, the clients (asyncio, autobahn's
client, in this process), each subscribed to `--per-client` random symbols of the
`--symbols`, and `--ticks` ticks in which every symbol moves. A tick is published the
way the worker does it, by calling the tick hook market.live.on_tick (in a thread).

Reports, per layer: tick-to-client latency p50/p99 (hook call to the frame arriving
at the client), messages and bytes per client per tick, and daphne's RSS with the
clients connected. Targets: p99 < 250 ms, 1 message, < 4 KB, < 300 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from benchkit import django_ready, services_start

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
BENCH_DB = "bench_live"
DAPHNE_LOG = BASE_DIR / "var" / "bench-live-daphne.log"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def django_setup(symbols: list[str]) -> None:
    django_ready()
    from market.models import Stock

    existing = set(Stock.objects.values_list("symbol", flat=True))
    Stock.objects.bulk_create(
        [
            Stock(
                symbol=symbol,
                name=f"{symbol} Bench",
                sector="technology",
                last_price=Decimal("100"),
                previous_close=Decimal("100"),
                day_open=Decimal("100"),
                day_high=Decimal("100"),
                day_low=Decimal("100"),
            )
            for symbol in symbols
            if symbol not in existing
        ]
    )


def daphne_start(port: int, layer: str) -> subprocess.Popen:
    env = dict(os.environ, CHANNEL_LAYER=layer, DJANGO_SETTINGS_MODULE="config.settings")
    process = subprocess.Popen(
        [
            sys.executable,
            # BENCH_DAPHNE_WRAPPER: a script run instead of `-m daphne` (a profiler, say).
            *(
                os.environ["BENCH_DAPHNE_WRAPPER"].split()
                if os.environ.get("BENCH_DAPHNE_WRAPPER")
                else ["-m", "daphne"]
            ),
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "config.asgi:application",
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        # A file, not a pipe: nobody reads it during the run, and a full pipe blocks daphne.
        stderr=open(DAPHNE_LOG, "w"),  # noqa: SIM115
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(DAPHNE_LOG.read_text()[-2000:]) from None
            time.sleep(0.2)
    raise RuntimeError("daphne did not start")


async def clients_run(args: argparse.Namespace) -> None:
    """The client side, in its own process (`--clients-only`): daphne's Django imports
    pin txaio to Twisted, so autobahn's asyncio client cannot share the orchestrator's
    process. Prints READY once every client subscribed, then on STOP (stdin) one JSON
    line of [arrival time.monotonic(), frame bytes] per frame; CLOCK_MONOTONIC is
    system-wide, so the orchestrator compares it with its tick times."""
    from autobahn.asyncio.websocket import WebSocketClientFactory, WebSocketClientProtocol

    symbols = [f"B{index:03d}" for index in range(args.symbols)]
    rng = random.Random(7)
    opened = asyncio.Event()
    open_count = 0
    frames: list[tuple[float, int]] = []

    class Client(WebSocketClientProtocol):
        def onOpen(self) -> None:  # noqa: N802 (autobahn's names)
            nonlocal open_count
            views = {"quote": rng.sample(symbols, args.per_client)}
            self.sendMessage(json.dumps({"type": "subscribe", "views": views}).encode())
            open_count += 1
            if open_count == args.clients:
                opened.set()

        def onMessage(self, payload: bytes, is_binary: bool) -> None:  # noqa: N802
            frames.append((time.monotonic(), len(payload)))

    port = args.port
    factory = WebSocketClientFactory(
        f"ws://127.0.0.1:{port}/ws/live/", origin=f"http://127.0.0.1:{port}"
    )
    factory.protocol = Client
    # The browser validates UTF-8 natively; autobahn does it in Python, byte by byte,
    # which would measure this client rather than the server.
    factory.setProtocolOptions(
        autoPingInterval=0, openHandshakeTimeout=120, utf8validateIncoming=False
    )
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(50)
    transports = []

    async def connect_one() -> None:
        async with gate:
            transport, _ = await loop.create_connection(factory, "127.0.0.1", port)
            transports.append(transport)

    await asyncio.gather(*(connect_one() for _ in range(args.clients)))
    await asyncio.wait_for(opened.wait(), timeout=120)
    print("READY", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    print(json.dumps(frames), flush=True)
    for transport in transports:
        transport.close()
    await asyncio.sleep(0.2)


def tick_make(symbols: list[str], slot: int, rng: random.Random) -> object:
    """A TickResult in which every symbol moved (built before the clock starts)."""
    from market.ticks import StockTick, TickResult

    ticks = []
    for index, symbol in enumerate(symbols):
        price = Decimal(rng.randint(5000, 15000)) / 100
        ticks.append(
            StockTick(
                stock_id=index + 1,
                symbol=symbol,
                price=price,
                previous_price=price - Decimal("0.10"),
                change=price - 100,
                change_pct=(price - 100).quantize(Decimal("0.0001")),
                day_high=price + 1,
                day_low=price - 1,
                volume=1000 + slot,
            )
        )
    return TickResult(slot=slot, at=datetime.now(UTC), ticks=ticks)


def cpu_seconds(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 1024 / 1024


def layer_bench(args: argparse.Namespace, layer: str, symbols: list[str]) -> dict:
    port = free_port()
    daphne = daphne_start(port, layer)
    try:
        rss_idle = rss_mb(daphne.pid)
        started = time.monotonic()
        clients = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--clients-only",
                "--port",
                str(port),
                "--clients",
                str(args.clients),
                "--symbols",
                str(args.symbols),
                "--per-client",
                str(args.per_client),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        ready = clients.stdout.readline().strip()
        if ready != "READY":
            raise RuntimeError(f"clients did not connect: {ready!r}")
        connect_seconds = time.monotonic() - started
        time.sleep(1.0)  # the subscriptions reach the consumers
        rss_connected = rss_mb(daphne.pid)
        from market.live import on_tick

        cpu_before = cpu_seconds(daphne.pid)
        clients_cpu_before = cpu_seconds(clients.pid)
        rng = random.Random(11)
        tick_started: list[float] = []
        for tick_index in range(args.ticks):
            result = tick_make(symbols, 10_000_000 + tick_index, rng)
            # The clock starts as the worker's hook publishes the tick (market.live.on_tick,
            # called as the worker calls it): storing the quotes, then the group send.
            tick_started.append(time.monotonic())
            on_tick(result)
            time.sleep(args.interval)
        cpu_per_tick = (cpu_seconds(daphne.pid) - cpu_before) / args.ticks
        clients_cpu_per_tick = (cpu_seconds(clients.pid) - clients_cpu_before) / args.ticks
        rss_after = rss_mb(daphne.pid)
        if os.environ.get("BENCH_DAPHNE_WRAPPER"):
            os.kill(daphne.pid, signal.SIGUSR1)  # a profiling wrapper dumps its stats
            time.sleep(2)
        clients.stdin.write("STOP\n")
        clients.stdin.flush()
        frames = json.loads(clients.stdout.readline())
        clients.wait(timeout=30)
    finally:
        daphne.terminate()
        try:
            daphne.wait(timeout=20)
        except subprocess.TimeoutExpired:
            daphne.kill()
            daphne.wait()
    latencies: list[float] = []
    last_frame = dict.fromkeys(tick_started, 0.0)  # per tick: its slowest frame
    total_bytes = 0
    for arrived, size in frames:
        # The frame belongs to the latest tick published before it arrived.
        started_at = max((t for t in tick_started if t <= arrived), default=None)
        if started_at is None:
            continue
        latencies.append(arrived - started_at)
        last_frame[started_at] = max(last_frame[started_at], arrived - started_at)
        total_bytes += size
    latencies.sort()
    messages = len(latencies)
    expected = args.clients * args.ticks
    return {
        "layer": layer,
        "connect_s": connect_seconds,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "p99_ms": latencies[max(int(messages * 0.99) - 1, 0)] * 1000 if latencies else float("nan"),
        "max_ms": latencies[-1] * 1000 if latencies else float("nan"),
        "msgs_per_client_tick": messages / expected,
        "bytes_per_client_tick": total_bytes / expected,
        "delivered": f"{messages}/{expected}",
        "cpu_ms_per_tick": cpu_per_tick * 1000,
        "clients_cpu_ms_per_tick": clients_cpu_per_tick * 1000,
        "load": os.getloadavg()[0],
        "tick_max_ms": [round(last_frame[t] * 1000) for t in tick_started],
        "rss_idle_mb": rss_idle,
        "rss_connected_mb": rss_connected,
        "rss_after_mb": rss_after,
    }


def settings_layer_switch(layer: str) -> None:
    """Point this process's channel layer at `layer` (the settings read it once)."""
    from channels.layers import channel_layers
    from django.conf import settings

    settings.CHANNEL_LAYERS["default"]["BACKEND"] = {
        "core": "channels_redis.core.RedisChannelLayer",
        "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    }[layer]
    channel_layers.backends.clear()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--per-client", type=int, default=20)
    parser.add_argument("--ticks", type=int, default=10)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--layer", choices=["core", "pubsub", "both"], default="both")
    parser.add_argument("--clients-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.clients_only:
        asyncio.run(clients_run(args))
        return

    services = services_start(database=BENCH_DB, redis_name="redis-bench-live", fresh=False)
    symbols = [f"B{index:03d}" for index in range(args.symbols)]
    django_setup(symbols)
    layers = ["core", "pubsub"] if args.layer == "both" else [args.layer]
    results = []
    try:
        for layer in layers:
            settings_layer_switch(layer)
            print(f"… {layer}: {args.clients} clients, {args.ticks} ticks", flush=True)
            results.append(layer_bench(args, layer, symbols))
    finally:
        services.stop()

    print()
    print(
        f"{args.clients} clients × {args.per_client} of {args.symbols} symbols, every symbol moving, "
        f"{args.ticks} ticks every {args.interval}s, one daphne process"
    )
    header = (
        f"{'layer':<7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'msg/cl/tick':>12} "
        f"{'bytes/cl/tick':>13} {'delivered':>13} {'RSS idle':>9} {'RSS conn':>9} {'RSS after':>10} {'connect s':>10} {'daphne CPU/tick':>16} {'clients CPU/tick':>17} {'load':>5}"
    )
    print(header)
    print("-" * len(header))
    for row in results:
        print(
            f"{row['layer']:<7} {row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f} {row['max_ms']:>8.1f} "
            f"{row['msgs_per_client_tick']:>12.2f} {row['bytes_per_client_tick']:>13.0f} {row['delivered']:>13} "
            f"{row['rss_idle_mb']:>8.0f}M {row['rss_connected_mb']:>8.0f}M {row['rss_after_mb']:>9.0f}M "
            f"{row['connect_s']:>10.1f} {row['cpu_ms_per_tick']:>13.0f} ms"
            f" {row['clients_cpu_ms_per_tick']:>14.0f} ms {row['load']:>5.1f}"
        )
    for row in results:
        print(f"{row['layer']}: last frame of each tick, ms: {row['tick_max_ms']}")
    print("targets: p99 < 250 ms, 1 message per client per tick, < 4096 bytes, RSS < 300 MB")


if __name__ == "__main__":
    main()
