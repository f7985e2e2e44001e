"""The README's run command: `make run` ends up here.

Starts the embedded PostgreSQL and Redis unless DATABASE_URL / REDIS_URL are set,
migrates, seeds the demo market and players, collects static files, then runs
web, worker and beat from the Procfile under honcho. Ctrl-C stops all three and
then the embedded servers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from config.embedded import BASE_DIR, ensure_services


def manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, check=True)


def run(port: int = 8000) -> int:
    print("Bullpen: starting services…", flush=True)
    services = ensure_services()
    if services.started:
        print(f"  embedded {' and '.join(services.started)} (data under var/)", flush=True)
    try:
        manage("migrate", "--noinput", "-v", "0")
        manage("collectstatic", "--noinput", "-v", "0")
        manage("seed_demo")
        print(
            f"\nBullpen is running at http://127.0.0.1:{port}/\n"
            "  log in as demo@bullpen.local (or handle 'demo') with password 'bullpen-demo-2026'\n"
            "  staff: 'admin' / 'bullpen-admin-2026' at /admin/\n"
            "  Ctrl-C stops everything.\n",
            flush=True,
        )
        venv_bin = Path(sys.executable).parent
        # The Procfile names daphne and celery bare, as production runs them.
        env = {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"}
        process = subprocess.Popen(
            [str(venv_bin / "honcho"), "start", "-f", "Procfile", "-p", str(port)],
            cwd=BASE_DIR,
            env=env,
        )
        try:
            return process.wait()
        except KeyboardInterrupt:
            # honcho got the same SIGINT and is stopping web, worker and beat. Ctrl-C is
            # how a developer stops Bullpen, not a failure.
            process.send_signal(signal.SIGINT)
            process.wait()
            return 0
    finally:
        print("Bullpen: stopping embedded services…", flush=True)
        services.stop()


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "run"
    if command == "run":
        return run(port=int(os.environ.get("PORT", "8000")))
    print(f"unknown command {command!r}; use: run", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
