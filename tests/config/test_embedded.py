"""The embedded servers that `make run` and `make test` start when no URL is set."""

from __future__ import annotations

import os
import time

import redis

from config.embedded import EmbeddedServices, start_redis


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_stopping_the_embedded_redis_ends_its_server():
    server, url = start_redis(name="redis-stop-check")
    pid = server.pid
    assert redis.Redis.from_url(url).ping()

    EmbeddedServices(redis_url=url, _redis=server).stop()

    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid), "the embedded Redis kept running after stop()"
