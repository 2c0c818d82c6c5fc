"""Test harness mirroring tests/harness/server.mjs: the real service binary on a fresh PostgreSQL
database over loopback, tokens from its `token` subcommand, fake providers as local HTTP servers,
and a TCP relay that can cut connections. Standard library only."""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
import subprocess
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from founderhouse_integrations_client import Client

ROOT = Path(__file__).resolve().parents[3]
#: The service binary: FH_BIN, else the debug build.
BINARY = Path(os.environ.get("FH_BIN") or ROOT / "target/debug/founderhouse-integrations")
#: The PostgreSQL server scripts/postgres.sh sets up.
PG = os.environ.get("FH_TEST_PG", "postgres://postgres:postgres@127.0.0.1:5432")

T = TypeVar("T")


def eventually(check: Callable[[], T | None], *, timeout: float = 10.0, what: str = "condition") -> T:
    """Polls `check` every 20 ms until it returns something truthy, or fails after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as err:  # the last failure is reported below
            last = err
        time.sleep(0.02)
    raise AssertionError(f"{what} not reached within {timeout} s" + (f": {last!r}" if last else ""))


class Service:
    """One process of the service on its own fresh database (dropped by `stop`)."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        if not BINARY.exists():
            raise RuntimeError(f"no service binary at {BINARY}: build it or set FH_BIN")
        self.database = f"fh_test_py_{uuid.uuid4().hex}"
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "FH_DATABASE_URL": f"{PG}/{self.database}",
            "FH_GRPC_ADDR": "127.0.0.1:0",
            "FH_HTTP_ADDR": "127.0.0.1:0",
            "FH_JWT_SECRET": secrets.token_hex(32),
            "FH_ENCRYPTION_KEYS": "k1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
            # Fakes live on loopback, which credential-supplied base URLs may not reach by default.
            "FH_CONNECTOR_ALLOW_PRIVATE_HOSTS": "true",
            # Probes would reach the fakes at random moments; tests run checks themselves.
            "FH_HEALTH_SWEEP": "false",
            "FH_LOG_FORMAT": "json",
            "FH_LOG": "info",
            **(env or {}),
        }
        self._output: list[str] = []
        self._addr: dict[str, str] = {}
        self._ready = threading.Event()
        self._proc = subprocess.Popen(
            [str(BINARY)],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(30) or not self._addr:
            self.stop()
            raise RuntimeError("service did not listen within 30 s:\n" + self.logs())
        self.grpc = self._addr["grpc"]
        self.http = self._addr["http"]

    def _read(self) -> None:
        assert self._proc.stdout is not None  # piped above
        for line in self._proc.stdout:
            self._output.append(line)
            if '"listening"' in line and not self._addr:
                fields = json.loads(line)
                fields = fields.get("fields", fields)
                self._addr = {"grpc": fields["grpc"], "http": fields["http"]}
                self._ready.set()
        self._ready.set()  # exited: unblock the constructor

    def logs(self) -> str:
        return "".join(self._output)

    def token(self, workspace: str | None = None, role: str = "admin", ttl: str = "1h") -> str:
        """A caller JWT signed with this service's secret, by its own `token` subcommand."""
        args = [str(BINARY), "token", "--workspace", workspace or str(uuid.uuid4()), "--role", role, "--ttl", ttl]
        out = subprocess.run(args, env=self.env, check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def client(
        self,
        token: str | Callable[[], str] | None = None,
        target: str | None = None,
        options: Sequence[tuple[str, Any]] = (),
    ) -> Client:
        return Client(f"http://{target or self.grpc}", token=token, options=options)

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        # Dropping can wait behind other suites' work on the shared server for many seconds;
        # the next test need not wait for it. `finish_drops()` waits for all of them.
        _drops.append(_dropper.submit(drop_database, self.database))


_dropper = ThreadPoolExecutor(max_workers=2, thread_name_prefix="drop-db")
_drops: list[Future[None]] = []


def finish_drops() -> None:
    """Waits until every database a stopped Service left has been dropped."""
    for done in _drops:
        done.result()
    _drops.clear()


def drop_database(name: str) -> None:
    url = urlsplit(PG)
    subprocess.run(
        ["psql", "-qAt", "-h", url.hostname or "127.0.0.1", "-p", str(url.port or 5432),
         "-U", url.username or "postgres", "-d", "postgres",
         "-c", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'],
        env={**os.environ, "PGPASSWORD": url.password or ""},
        check=False,
        capture_output=True,
    )


@dataclass
class Seen:
    """A request a fake received."""

    method: str
    path: str
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int = 200
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class FakeServer:
    """A third-party HTTP server on 127.0.0.1:0. `handler(seen)` answers each request; every
    request is kept in `requests` so tests can check what the service sent."""

    def __init__(self, handler: Callable[[Seen], Answer]) -> None:
        self.requests: list[Seen] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                seen = Seen(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length).decode(),
                )
                fake.requests.append(seen)
                answer = handler(seen)
                payload = json.dumps(answer.json).encode()
                self.send_response(answer.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                for k, v in answer.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: pytest shows failures, not every request

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class Relay:
    """A TCP relay on 127.0.0.1:0 in front of `target`. `cut()` drops every open connection and
    refuses new ones until `restore()`: a network outage between a client and the service."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self._target = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._refusing = False
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._refusing:
                    conn.close()
                    continue
                upstream = socket.create_connection(self._target)
                self._open += [conn, upstream]
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        with self._lock:
            self._refusing = True
            for s in self._open:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self._open.clear()

    def restore(self) -> None:
        with self._lock:
            self._refusing = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()
