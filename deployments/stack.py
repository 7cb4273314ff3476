"""The team's stack on a PostgreSQL server: an MLflow tracking server, a Prefect server and the
Optuna storage, each in its own database (``tailor stack up / env / status / down``).

Each server is started with its own CLI and documented settings (``mlflow server``,
``prefect server start`` with ``PREFECT_API_DATABASE_CONNECTION_URL``), in its own session
(process group) so that stopping it stops its workers too, and is recorded in
``DIR/stack.json`` with its PID and the process's start time: ``down`` stops exactly those
processes, never a later process that reused a PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import psutil
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

from tailor.adapters.registry_lock import REGISTRY_LOCK_ENV
from tailor.adapters.tracking import OPTUNA_STORAGE_ENV

STACK_FILE = "stack.json"
ROLES = ("mlflow", "prefect", "optuna")
DEFAULT_PREFIX = "tailor"


def database_name(role: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The PostgreSQL database a role keeps its state in: ``tailor_mlflow``, ..."""
    return f"{prefix}_{role}"
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0


class StackError(RuntimeError):
    """The stack cannot be brought up, read or stopped; the message says what to do."""


@dataclass(frozen=True)
class Server:
    """One background server: how to reach it and how to recognise its process."""

    name: str
    pid: int
    started: float  # psutil create_time: a reused PID has another
    url: str
    health: str | None  # None: running is all that can be checked
    log: str
    command: list[str] = field(default_factory=list)

    def process(self) -> psutil.Process | None:
        """The recorded process if it is still the one we started, else None."""
        try:
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.started) > 1.0:
                return None
            return proc if proc.status() != psutil.STATUS_ZOMBIE else None
        except psutil.NoSuchProcess:
            return None

    def answers(self, timeout_s: float = 3.0) -> bool:
        if self.health is None:
            return self.process() is not None
        try:
            return httpx.get(self.health, timeout=timeout_s).status_code == 200
        except httpx.HTTPError:
            return False


@dataclass(frozen=True)
class Stack:
    """What ``DIR/stack.json`` holds: the database URL and the servers started on it."""

    dir: str
    database_url: str
    servers: dict[str, Server]
    prefix: str = DEFAULT_PREFIX

    def url_of(self, role: str) -> str:
        return self.servers[role].url

    def database(self, role: str, driver: str = "postgresql+psycopg") -> str:
        return database_url(self.database_url, database_name(role, self.prefix), driver)

    def environment(self) -> dict[str, str]:
        """The variables a client (tailor, a service, a worker) uses to work on this stack."""
        return {
            "MLFLOW_TRACKING_URI": self.url_of("mlflow"),
            "PREFECT_API_URL": self.url_of("prefect"),
            OPTUNA_STORAGE_ENV: self.database("optuna"),
            REGISTRY_LOCK_ENV: self.database("mlflow"),
        }


def database_url(base_url: str, database: str, driver: str = "postgresql+psycopg") -> str:
    """``base_url`` pointed at ``database`` through ``driver`` (password kept)."""
    url = make_url(base_url)
    if not url.drivername.startswith("postgresql"):
        raise StackError(f"--database-url must be a PostgreSQL URL, not {url.drivername}://")
    return url.set(drivername=driver, database=database).render_as_string(hide_password=False)


def ensure_databases(base_url: str, prefix: str = DEFAULT_PREFIX) -> list[str]:
    """Create the stack's databases that are missing; returns the ones created."""
    url: URL = make_url(database_url(base_url, make_url(base_url).database or "postgres"))
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    created = []
    try:
        with engine.connect() as conn:
            for name in (database_name(role, prefix) for role in ROLES):
                exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                      {"n": name}).first()
                if not exists:
                    conn.execute(text(f'CREATE DATABASE "{name}"'))
                    created.append(name)
    except Exception as exc:  # psycopg/SQLAlchemy raise many types: report what failed
        raise StackError(f"cannot create the stack's databases on "
                         f"{url.render_as_string(hide_password=True)}: {exc}") from exc
    finally:
        engine.dispose()
    return created


def drop_databases(base_url: str, prefix: str) -> None:
    """Drop the stack's databases (closing their connections): for throwaway stacks of
    tests and benchmarks; `tailor stack down` keeps them."""
    engine = create_engine(database_url(base_url, make_url(base_url).database or "postgres"),
                           isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for role in ROLES:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{database_name(role, prefix)}" '
                                  "WITH (FORCE)"))
    finally:
        engine.dispose()


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _bin(name: str) -> str:
    """The console script installed beside this interpreter (the venv's mlflow, prefect)."""
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else name


def _mlflow_command(stack_dir: Path, db: str, host: str, port: int) -> tuple[list[str], dict]:
    command = [_bin("mlflow"), "server", "--backend-store-uri", db,
               "--artifacts-destination", str(stack_dir / "artifacts"), "--serve-artifacts",
               "--host", host, "--port", str(port), "--workers", "2"]
    # The job runner serves GenAI features tailor does not use: 5 processes, ~1.5 GB.
    return command, {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def _prefect_command(stack_dir: Path, db: str, host: str, port: int) -> tuple[list[str], dict]:
    command = [_bin("prefect"), "server", "start", "--host", host, "--port", str(port)]
    return command, {
        "PREFECT_HOME": str(stack_dir / "prefect"),
        "PREFECT_API_DATABASE_CONNECTION_URL": db,
        "PREFECT_SERVER_API_HOST": host,
        "PREFECT_SERVER_API_PORT": str(port),  # else the UI calls port 4200
        "PREFECT_UI_API_URL": f"http://{host}:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }


def _worker_command(pool: str, port: int) -> tuple[list[str], dict]:
    command = [_bin("prefect"), "worker", "start", "--pool", pool, "--type", "process",
               "--with-healthcheck"]
    return command, {"PREFECT_WORKER_WEBSERVER_HOST": "127.0.0.1",
                     "PREFECT_WORKER_WEBSERVER_PORT": str(port)}


def _launch(name: str, command: list[str], env: Mapping[str, str], log: Path, url: str,
            health: str | None) -> Server:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env={**os.environ, **env},
                                start_new_session=True)
    return Server(name, proc.pid, psutil.Process(proc.pid).create_time(), url, health,
                  str(log), command)


def _wait_until_up(servers: list[Server], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    waiting = list(servers)
    while waiting:
        for server in list(waiting):
            if server.process() is None:
                raise StackError(f"the {server.name} server exited while starting; its log "
                                 f"{server.log} ends:\n{_tail(server.log)}")
            if server.answers():
                waiting.remove(server)
        if waiting and time.monotonic() > deadline:
            names = ", ".join(s.name for s in waiting)
            raise StackError(f"{names} did not answer within {timeout_s:.0f} s; see "
                             + ", ".join(s.log for s in waiting))
        if waiting:
            time.sleep(0.5)


def _tail(path: str, lines: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def read_stack(stack_dir: Path) -> Stack | None:
    path = stack_dir / STACK_FILE
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text())
        return Stack(raw["dir"], raw["database_url"],
                     {k: Server(**v) for k, v in raw["servers"].items()},
                     raw.get("prefix", DEFAULT_PREFIX))
    except (ValueError, KeyError, TypeError) as exc:
        raise StackError(f"{path} is not a stack file tailor wrote ({exc}); move it away") from exc


def _write_stack(stack: Stack) -> None:
    """Atomically, readable by its owner only (the database URL may hold a password)."""
    path = Path(stack.dir) / STACK_FILE
    tmp = path.with_suffix(".json.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(asdict(stack), handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def up(database: str, stack_dir: Path, host: str = "127.0.0.1", mlflow_port: int | None = None,
       prefect_port: int | None = None, work_pool: str | None = None,
       prefix: str = DEFAULT_PREFIX, timeout_s: float = START_TIMEOUT_S,
       progress: Callable[[str], None] = lambda _: None) -> Stack:
    """Create the databases, start both servers in the background, wait until they answer;
    with ``work_pool``, then a Prefect process worker on that pool, in the stack's environment
    (its flow runs track to this MLflow server and tune in this Optuna storage).

    A stack already running in ``stack_dir`` is returned as it is; a half-running one (a
    server died) must be stopped with :func:`down` first.
    """
    stack_dir = stack_dir.resolve()
    stack_dir.mkdir(parents=True, exist_ok=True)
    existing = read_stack(stack_dir)
    if existing is not None:
        alive = {name: s.process() is not None for name, s in existing.servers.items()}
        if all(alive.values()):
            return existing
        if any(alive.values()):
            raise StackError(f"the stack in {stack_dir} is half up ({alive}); run "
                             f"`tailor stack down --dir {stack_dir}` first")
    for name in ensure_databases(database, prefix):
        progress(f"created database {name}")
    mport, pport = mlflow_port or free_port(host), prefect_port or free_port(host)
    base = f"http://{host}:"
    specs = {
        "mlflow": (_mlflow_command(
            stack_dir, database_url(database, database_name("mlflow", prefix)), host, mport),
            f"{base}{mport}", f"{base}{mport}/health"),
        "prefect": (_prefect_command(
            stack_dir, database_url(database, database_name("prefect", prefix),
                                    "postgresql+asyncpg"), host, pport),
            f"{base}{pport}/api", f"{base}{pport}/api/health"),
    }
    servers = {}
    for name, ((command, env), url, health) in specs.items():
        servers[name] = _launch(name, command, env, stack_dir / "logs" / f"{name}.log",
                                url, health)
        progress(f"started {name} (pid {servers[name].pid}) on {url}")
    stack = Stack(str(stack_dir), database, servers, prefix)
    _write_stack(stack)  # recorded before waiting: `down` can stop a stack that never came up
    _wait_until_up(list(servers.values()), timeout_s)
    if work_pool:
        wport = free_port("127.0.0.1")
        command, env = _worker_command(work_pool, wport)
        servers["worker"] = _launch(
            "worker", command, {**env, **stack.environment()},
            stack_dir / "logs" / "worker.log", f"work pool {work_pool}",
            f"http://127.0.0.1:{wport}/health")
        progress(f"started a process worker (pid {servers['worker'].pid}) on pool {work_pool}")
        stack = Stack(str(stack_dir), database, servers, prefix)
        _write_stack(stack)
        _wait_until_up([servers["worker"]], timeout_s)
    return stack


def require_stack(stack_dir: Path) -> Stack:
    stack = read_stack(stack_dir.resolve())
    if stack is None:
        raise StackError(f"no stack in {stack_dir} ({STACK_FILE} is missing); start one with "
                         f"`tailor stack up --database-url URL --dir {stack_dir}`")
    return stack


def env_lines(stack: Stack) -> list[str]:
    """``export`` lines for a POSIX shell: ``eval "$(tailor stack env --dir DIR)"``."""
    import shlex

    return [f"export {k}={shlex.quote(v)}" for k, v in stack.environment().items()]


@dataclass(frozen=True)
class ServerStatus:
    name: str
    pid: int
    url: str
    running: bool
    answering: bool


def status(stack: Stack) -> list[ServerStatus]:
    rows = []
    for server in stack.servers.values():
        running = server.process() is not None
        rows.append(ServerStatus(server.name, server.pid, server.url, running,
                                 running and server.answers()))
    return rows


def _stop(server: Server, timeout_s: float) -> bool:
    """SIGTERM the server's process group (its workers too), SIGKILL what is left; False if it
    was not running."""
    proc = server.process()
    if proc is None:
        return False
    family = [proc, *proc.children(recursive=True)]
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    _, alive = psutil.wait_procs(family, timeout=timeout_s)
    for leftover in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            leftover.kill()
    psutil.wait_procs(alive, timeout=5)
    return True


def down(stack: Stack, timeout_s: float = STOP_TIMEOUT_S) -> dict[str, bool]:
    """Stop the recorded servers (name -> whether it was running) and forget them."""
    stopped = {name: _stop(server, timeout_s) for name, server in stack.servers.items()}
    (Path(stack.dir) / STACK_FILE).unlink(missing_ok=True)
    return stopped
