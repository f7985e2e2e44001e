"""Seed many players in one statement (the admin scale test and bench/admin.py)."""

from __future__ import annotations

from django.db import connection

# One INSERT ... SELECT: 100,000 rows in about a second. Every 1,000th player is
# suspended, every 5,000th deleted; join dates one minute apart, newest first.
SEED_PLAYERS_SQL = """
INSERT INTO accounts_user (
    password, is_superuser, handle, email, display_name, public_profile, time_zone,
    is_staff, is_active, date_joined, deleted_at, suspended_at, suspension_reason
)
SELECT '!', false, 'bulk' || n, 'bulk' || n || '@example.com', 'Bulk Player ' || n,
       mod(n, 10) = 0, 'UTC', false, true, now() - n * interval '1 minute',
       CASE WHEN mod(n, 5000) = 0 THEN now() END,
       CASE WHEN mod(n, 1000) = 0 THEN now() END,
       CASE WHEN mod(n, 1000) = 0 THEN 'seeded' ELSE '' END
FROM generate_series(1, %(count)s) AS n
"""


def players_seed(count: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(SEED_PLAYERS_SQL, {"count": count})
        cursor.execute("ANALYZE accounts_user")
