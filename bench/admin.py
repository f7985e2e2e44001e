"""Benchmark of the staff admin's player list with 100,000 players.

    .venv/bin/python bench/admin.py [--quick]

Starts the embedded PostgreSQL and Redis unless DATABASE_URL / REDIS_URL are set,
recreates a separate `bench_bullpen_admin` database, migrates it, seeds 100,000
players with one INSERT ... SELECT generate_series (tests/moderation/seeding.py), then
times GET /admin/accounts/user/ as an admin: the first page, a deep page, each filter
and a search. Target: every page < 150 ms (p95). The query count per page is capped
at 7 by tests/moderation/test_admin_scale.py. Prints one table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from benchkit import django_ready, p95, services_start

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
BENCH_DB = "bench_bullpen_admin"
PLAYERS = 100_000
TARGET_MS = 150.0

PAGES = [
    ("first page", {}),
    ("page 1,000", {"p": "1000"}),
    ("suspended", {"state": "suspended"}),
    ("active", {"state": "active"}),
    ("any staff role", {"role": "staff"}),
    ("public profile", {"public_profile__exact": "1"}),
    ("search handle", {"q": "bulk99999"}),
    ("search email", {"q": "bulk4242@example.com"}),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    repeats = 5 if args.quick else 20
    services = services_start(database=BENCH_DB, redis_name="redis-bench-admin")
    try:
        django_ready()
        from django.test import Client

        from accounts import roles
        from accounts import services as account_services
        from tests.moderation.seeding import players_seed

        started = time.perf_counter()
        players_seed(PLAYERS)
        print(f"seeded {PLAYERS:,} players in {time.perf_counter() - started:.1f} s")
        admin = account_services.user_signup(
            handle="bench_admin", email="bench@example.com", password="bench-password-123"
        )
        account_services.role_grant(user=admin, role=roles.ADMIN)
        client = Client()
        client.force_login(admin)
        client.get("/admin/")  # the session's first request records the device

        rows = []
        failed = False
        for label, query in PAGES:
            samples = []
            response = client.get("/admin/accounts/user/", query)
            assert response.status_code == 200, (label, response.status_code)
            for _ in range(repeats):
                began = time.perf_counter()
                client.get("/admin/accounts/user/", query)
                samples.append((time.perf_counter() - began) * 1000)
            worst = p95(samples)
            failed |= worst > TARGET_MS
            rows.append((label, statistics.median(samples), worst))

        print(f"\nGET /admin/accounts/user/ with {PLAYERS:,} players ({repeats} runs each)")
        print(f"{'page':<16} {'median ms':>10} {'p95 ms':>8}")
        for label, median, worst in rows:
            mark = "" if worst <= TARGET_MS else "  over target"
            print(f"{label:<16} {median:>10.1f} {worst:>8.1f}{mark}")
        print(f"target: p95 < {TARGET_MS:.0f} ms")
        return 1 if failed else 0
    finally:
        services.stop()


if __name__ == "__main__":
    raise SystemExit(main())
