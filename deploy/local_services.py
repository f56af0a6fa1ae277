"""A throwaway Postgres and Redis on 127.0.0.1, for trying the production instance on one machine and for its tests.

Production points the same settings at servers of its own; this module only starts local ones: each in a folder
of its own, on a free port, bound to 127.0.0.1, with a generated password for Postgres. A missing server is
installed with apt-get when this process may do so (root with apt), else the error says what to install.

    python -m deploy.local_services up --dir /tmp/tf-services    # writes /tmp/tf-services/env.sh (mode 600)
    source /tmp/tf-services/env.sh
    python -m deploy.local_services down --dir /tmp/tf-services
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HOST = "127.0.0.1"
STATE_FILE = "services.json"


@dataclass(frozen=True)
class Services:
    """Where the local servers listen and how to reach them; `env()` is what the instance and workers read."""

    root: str
    pg_port: int
    pg_user: str
    pg_password: str
    pg_db: str
    redis_port: int | None

    def env(self) -> dict[str, str]:
        """The environment variables deploy/dagster.yaml and the Celery workers read (credentials only here)."""
        env = {
            "TRADEFLOW_PG_HOST": HOST,
            "TRADEFLOW_PG_PORT": str(self.pg_port),
            "TRADEFLOW_PG_USER": self.pg_user,
            "TRADEFLOW_PG_PASSWORD": self.pg_password,
            "TRADEFLOW_PG_DB": self.pg_db,
        }
        if self.redis_port is not None:
            env["TRADEFLOW_CELERY_BROKER"] = f"redis://{HOST}:{self.redis_port}/0"
            env["TRADEFLOW_CELERY_BACKEND"] = f"redis://{HOST}:{self.redis_port}/1"
        return env


def free_port() -> int:
    """A TCP port nothing listens on now (the kernel's choice)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _find(name: str) -> str | None:
    return shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)


def _binary(name: str, apt_package: str) -> str:
    """The server binary: on PATH, in Debian's postgresql folders, or installed now with apt-get."""
    found = _find(name)
    if not found and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", apt_package], check=True, env=env)
        found = _find(name)
    if not found:
        raise RuntimeError(f"{name} is not installed: install the {apt_package!r} package (Debian/Ubuntu) and retry")
    return found


def _as_postgres_user(cmd: list[str]) -> list[str]:
    """Postgres refuses to run as root: run its commands as the `postgres` account the package creates."""
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


def _own(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def start(root: Path, *, redis: bool = True) -> Services:
    """Start Postgres (and Redis) under `root`, wait until each answers, and record them in `root/services.json`."""
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    pg_dir = root / "postgres"
    pg_dir.mkdir(exist_ok=True)
    _own(pg_dir)
    initdb, pg_ctl = _binary("initdb", "postgresql"), _binary("pg_ctl", "postgresql")
    password = secrets.token_urlsafe(18)
    pwfile = pg_dir / "pw"
    pwfile.write_text(password + "\n")
    _own(pwfile)
    data = pg_dir / "data"
    subprocess.run(
        _as_postgres_user(
            [initdb, "-D", str(data), "-U", "tradeflow", "--auth=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8"]
            + ["--no-sync"]
        ),
        check=True,
        capture_output=True,
    )
    pwfile.unlink()
    port = free_port()
    opts = f"-c listen_addresses={HOST} -p {port} -k {data} -c fsync=off -c max_connections=200"
    subprocess.run(
        _as_postgres_user([pg_ctl, "-D", str(data), "-o", opts, "-l", str(pg_dir / "server.log"), "-w", "start"]),
        check=True,
        capture_output=True,
    )
    services = Services(str(root), port, "tradeflow", password, "dagster", None)
    _create_database(services)
    if redis:
        services = Services(**{**asdict(services), "redis_port": _start_redis(root)})
    state = root / STATE_FILE
    state.write_text(json.dumps(asdict(services)))
    os.chmod(state, 0o600)
    return services


def _create_database(services: Services) -> None:
    import psycopg2

    conn = psycopg2.connect(
        host=HOST, port=services.pg_port, user=services.pg_user, password=services.pg_password, dbname="postgres"
    )
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {services.pg_db}")
    conn.close()


def _start_redis(root: Path) -> int:
    redis_server = _binary("redis-server", "redis-server")
    folder = root / "redis"
    folder.mkdir(exist_ok=True)
    port = free_port()
    args = [redis_server, "--bind", HOST, "--port", str(port), "--save", "", "--appendonly", "no"]
    args += ["--dir", str(folder), "--daemonize", "yes", "--pidfile", str(folder / "redis.pid")]
    subprocess.run(args + ["--logfile", str(folder / "redis.log")], check=True, capture_output=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return port
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"redis-server did not answer on {HOST}:{port}; see {folder / 'redis.log'}")


def stop(root: Path) -> None:
    """Stop what `start` started under `root` (fast shutdown) and leave its folders for inspection."""
    data = root / "postgres" / "data"
    if (data / "postmaster.pid").exists():
        pg_ctl = _binary("pg_ctl", "postgresql")
        subprocess.run(_as_postgres_user([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]), capture_output=True)
    pidfile = root / "redis" / "redis.pid"
    if pidfile.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pidfile.read_text().strip()), 15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--dir", required=True, type=Path, help="folder for the servers' data and logs")
    parser.add_argument("--no-redis", action="store_true", help="Postgres only")
    args = parser.parse_args()
    if args.action == "down":
        stop(args.dir)
        return
    services = start(args.dir.resolve(), redis=not args.no_redis)
    env_file = args.dir.resolve() / "env.sh"
    env_file.touch(mode=0o600)
    env_file.write_text("".join(f"export {key}={value}\n" for key, value in services.env().items()))
    print(f"Postgres on {HOST}:{services.pg_port}, Redis on {HOST}:{services.redis_port}; now: source {env_file}")


if __name__ == "__main__":
    main()
