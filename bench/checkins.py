"""Full phone check-ins per second through the signed webhooks, against a bare Flask app.

One check-in is the three webhooks of one answered call, in order on one keep-alive
connection: answer, gather (keypad 1, "good": closes the day and queues one report
email per contact) and the final status callback. Mimamori runs under gunicorn on a
private PostgreSQL database; bench/baseline_app.py (fixed TwiML, no signature check,
no database) runs under the same gunicorn settings and gets the same requests.

    .venv/bin/python bench/checkins.py [--checkins 1500] [--connections 16] [--warmup 100]
                                       [--rounds 3] [--workers 4] [--threads 4] [--timeout 600]

The last line of output is the result:
    checkins_per_s=... baseline_per_s=... ratio=... p50_ms=... p99_ms=...
ratio = checkins_per_s / baseline_per_s. p50/p99 are per-request latencies of Mimamori's
webhooks (answer, gather and status together), not of whole check-ins.
Traffic goes to 127.0.0.1 only; the database is dropped at the end, also on failure.
"""

from __future__ import annotations

import argparse
import http.client
import math
import multiprocessing as mp
import os
import queue
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script, sys.path[0] is bench/

from sqlalchemy import create_engine, func, insert, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

from settings import sim_auth_token  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from store.models import CallAttempt, CheckIn, Contact, Email, Resident  # noqa: E402

HOST = "127.0.0.1"  # the only address this script sends traffic to
DEFAULT_POSTGRES_URL = "postgresql+psycopg://root@127.0.0.1:5432/test"
SECRET_KEY = "bench"
ACCOUNT_SID = "AC" + "0" * 32
FROM_NUMBER = "+815000000000"
CONTACTS_PER_RESIDENT = 2  # so each answered check-in queues two report emails, as in production
# Both apps run with these; see bench/README.md for why.
GUNICORN_WORKERS = 2
GUNICORN_THREADS = 4
# The baseline is 5-8 times faster: the same requests sent this many times keep its phases from being so
# short that a moment of other load on the machine swings its figure.
BASELINE_REPEAT = 4
CLIENT_PROCESSES = 2  # the load generator's threads are split over this many processes (one GIL each)
REQUEST_TIMEOUT = 30.0
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
HEALTH_TRIES = 150  # x 0.1 s
ANSWER, GATHER, STATUS = 0, 1, 2
KINDS = ("answer", "gather", "status")

# One webhook, ready to send: (kind, path with query, form body, headers).
Request = tuple[int, str, bytes, dict[str, str]]


class BenchError(RuntimeError):
    """The benchmark cannot give a meaningful figure; the message says why."""


@dataclass
class Phase:
    checkins: int
    seconds: float
    latencies: list[list[float]]  # per kind, in seconds
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds used during the phase, by party

    @property
    def per_second(self) -> float:
        return self.checkins / self.seconds

    @classmethod
    def combined(cls, phases: list[Phase]) -> Phase:
        cpu: dict[str, float] = {}
        for phase in phases:
            for party, seconds in phase.cpu.items():
                cpu[party] = cpu.get(party, 0.0) + seconds
        return cls(
            checkins=sum(phase.checkins for phase in phases),
            seconds=sum(phase.seconds for phase in phases),
            latencies=[[value for phase in phases for value in phase.latencies[kind]] for kind in range(len(KINDS))],
            cpu=cpu,
        )

    def all_latencies(self) -> list[float]:
        return sorted(value for kind in self.latencies for value in kind)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGALRM, _raise_timeout)
    signal.alarm(args.timeout)
    try:
        result = run(args)
    except BenchError as error:
        print(f"bench: FAILED: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.alarm(0)
    print(result)
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkins", type=_positive, default=1500, help="timed check-ins per app (default 1500)")
    parser.add_argument("--connections", type=_positive, default=16, help="concurrent connections (default 16)")
    parser.add_argument("--warmup", type=_non_negative, default=100, help="untimed check-ins per app first (default 100)")
    parser.add_argument("--rounds", type=_positive, default=3,
                        help="alternate the two apps this many times over the timed check-ins (default 3)")
    parser.add_argument("--baseline-repeat", type=_positive, default=BASELINE_REPEAT,
                        help=f"send the baseline each round's check-ins this many times, so that its phases last "
                             f"about as long as Mimamori's (default {BASELINE_REPEAT})")
    parser.add_argument("--workers", type=_positive, default=GUNICORN_WORKERS, help=f"gunicorn workers, both apps (default {GUNICORN_WORKERS})")
    parser.add_argument("--threads", type=_positive, default=GUNICORN_THREADS, help=f"gunicorn threads per worker, both apps (default {GUNICORN_THREADS})")
    parser.add_argument("--timeout", type=_positive, default=600, help="give up after this many seconds (default 600)")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> str:
    admin_url = make_url(os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL))
    if admin_url.host not in (None, "127.0.0.1", "localhost", "::1"):
        raise BenchError(f"BENCH_POSTGRES_URL must point at this machine, not {admin_url.host}")
    workdir = Path(tempfile.mkdtemp(prefix="mimamori-bench-"))
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    database = f"mimamori_bench_{secrets.token_hex(5)}"
    created = False
    servers: list[Server] = []
    try:
        try:
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{database}"'))
        except Exception as error:
            raise BenchError(f"cannot create a database on {admin_url.render_as_string()}: {error}") from error
        created = True
        url = admin_url.set(database=database).render_as_string(hide_password=False)
        print(f"database {database}: migrating and seeding {args.warmup} + {args.checkins} check-ins", flush=True)
        upgrade(url)
        started = time.perf_counter()
        calls = seed(url, args.warmup + args.checkins)
        print(f"seeded in {time.perf_counter() - started:.1f} s", flush=True)

        app_port, baseline_port = free_port(), free_port()
        while baseline_port == app_port:
            baseline_port = free_port()
        base_url = f"http://{HOST}:{app_port}"
        validator = RequestValidator(sim_auth_token(SECRET_KEY))
        checkins = [signed_checkin(validator, base_url, attempt_id, sid, phone) for attempt_id, sid, phone in calls]
        warmup, timed = checkins[: args.warmup], checkins[args.warmup :]

        print(f"gunicorn: {args.workers} workers x {args.threads} threads (gthread), both apps; "
              f"load: {args.connections} keep-alive connections in {min(CLIENT_PROCESSES, args.connections)} "
              f"processes; {args.rounds} rounds of baseline then mimamori; {_machine()}", flush=True)
        baseline = Server("baseline", "bench.baseline_app:create_app()", baseline_port, workdir, {}, args)
        mimamori = Server("mimamori", "app:create_app()", app_port, workdir, {
            "DATABASE_URL": url,
            "SECRET_KEY": SECRET_KEY,
            "PUBLIC_BASE_URL": base_url,
            "CARRIER": "sim",
            "MAIL_BACKEND": "outbox",
            "MAIL_OUTBOX_DIR": str(workdir / "outbox"),
        }, args)
        for server in (baseline, mimamori):
            servers.append(server)
            server.start()
            load(server, warmup, args.connections)

        # Interleaved, so that a change in the machine's other load during the run touches both apps alike.
        # The baseline is stateless and gets the same requests, several times; each of Mimamori's check-ins is used once.
        base_rounds, app_rounds = [], []
        size = math.ceil(len(timed) / args.rounds)
        for start in range(0, len(timed), size):
            chunk = timed[start : start + size]
            base_rounds.append(load(baseline, chunk * args.baseline_repeat, args.connections))
            app_rounds.append(load(mimamori, chunk, args.connections, lambda: backend_pids(admin, database)))
        for server in servers:
            server.stop()
        base, app = Phase.combined(base_rounds), Phase.combined(app_rounds)
        report("baseline", base)
        report("mimamori", app)
        print(sanity(url, len(checkins)), flush=True)
        print(f"ratio = mimamori / baseline check-ins per second; p50_ms and p99_ms: per-request latency of "
              f"Mimamori's webhooks at {args.connections} connections", flush=True)
        latencies = app.all_latencies()
        return (
            f"checkins_per_s={app.per_second:.1f} baseline_per_s={base.per_second:.1f} "
            f"ratio={app.per_second / base.per_second:.3f} "
            f"p50_ms={percentile(latencies, 50) * 1000:.1f} p99_ms={percentile(latencies, 99) * 1000:.1f}"
        )
    finally:
        for server in servers:
            server.stop()
        if created:
            _drop_database(admin, database)
        admin.dispose()
        shutil.rmtree(workdir, ignore_errors=True)


# --- the database -------------------------------------------------------------------------


def seed(url: str, count: int) -> list[tuple[int, str, str]]:
    """Residents with two contacts each, each with a check-in being called, as the dialler leaves it.

    Returns (attempt id, CallSid, resident phone) per check-in, in order.
    """
    now = datetime.now(UTC)
    local_day = now.astimezone(ZoneInfo("Asia/Tokyo")).date()
    closes = now + timedelta(hours=12)
    phones = [f"+8131{n:08d}" for n in range(count)]
    sids = ["CA" + secrets.token_hex(16) for _ in range(count)]
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            residents = connection.execute(
                insert(Resident.__table__).returning(Resident.__table__.c.id, sort_by_parameter_order=True),
                [
                    dict(external_id=f"bench-{n}", name=f"見守 {n}", phone=phones[n], phone_status="ok",
                         call_time=clock_time(9, 0), timezone="Asia/Tokyo", language="ja", channel="phone",
                         municipality=None, active=True, planned_through=local_day, created_at=now, updated_at=now)
                    for n in range(count)
                ],
            ).scalars().all()
            connection.execute(
                insert(Contact.__table__),
                [
                    dict(resident_id=resident_id, position=position, name=f"家族 {position}",
                         email=f"family{position}.bench-{n}@example.org", language=None)
                    for n, resident_id in enumerate(residents)
                    for position in range(1, CONTACTS_PER_RESIDENT + 1)
                ],
            )
            checkins = connection.execute(
                insert(CheckIn.__table__).returning(CheckIn.__table__.c.id, sort_by_parameter_order=True),
                [
                    dict(resident_id=resident_id, local_date=local_day, channel="phone", slot="daily",
                         status="calling", window_closes_at=closes, unanswered_count=0, created_at=now)
                    for resident_id in residents
                ],
            ).scalars().all()
            attempts = connection.execute(
                insert(CallAttempt.__table__).returning(CallAttempt.__table__.c.id, sort_by_parameter_order=True),
                [
                    dict(checkin_id=checkin_id, number=1, to_number=phones[n], status="queued", call_sid=sids[n],
                         dialling_at=now, placed_at=now)
                    for n, checkin_id in enumerate(checkins)
                ],
            ).scalars().all()
            connection.execute(text("ANALYZE"))
    finally:
        engine.dispose()
    return list(zip(attempts, sids, phones, strict=True))


def sanity(url: str, count: int) -> str:
    """Every check-in answered, its call completed, and two report emails queued for it."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            answered = connection.scalar(select(func.count()).select_from(CheckIn).where(CheckIn.status == "answered"))
            completed = connection.scalar(
                select(func.count()).select_from(CallAttempt)
                .where(CallAttempt.status == "completed", CallAttempt.outcome == "answered")
            )
            emails = connection.scalar(select(func.count()).select_from(Email).where(Email.kind == "report"))
            covered = connection.scalar(select(func.count(Email.checkin_id.distinct())).where(Email.kind == "report"))
    finally:
        engine.dispose()
    line = (f"sanity: {answered}/{count} check-ins answered, {completed}/{count} calls completed, "
            f"{emails}/{count * CONTACTS_PER_RESIDENT} report emails queued for {covered} check-ins")
    if (answered, completed, emails, covered) != (count, count, count * CONTACTS_PER_RESIDENT, count):
        raise BenchError(line)
    return line


def _drop_database(admin, database: str) -> None:
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    except Exception as error:  # keep the original failure visible; say what is left behind
        print(f"bench: could not drop database {database}: {error}", file=sys.stderr)


# --- the requests -------------------------------------------------------------------------


def signed_checkin(validator: RequestValidator, base_url: str, attempt_id: int, sid: str,
                   phone: str) -> tuple[Request, Request, Request]:
    """The carrier's three webhooks for one answered call, signed as Twilio signs them."""
    call = {"CallSid": sid, "AccountSid": ACCOUNT_SID, "From": FROM_NUMBER, "To": phone}
    prefix = f"/ivr/calls/{attempt_id}"
    return (
        _signed(validator, base_url, ANSWER, f"{prefix}/answer", call | {"CallStatus": "in-progress", "AnsweredBy": "human"}),
        _signed(validator, base_url, GATHER, f"{prefix}/gather?q=0&r=0&t=0", call | {"CallStatus": "in-progress", "Digits": "1"}),
        _signed(validator, base_url, STATUS, f"{prefix}/status", call | {"CallStatus": "completed", "CallDuration": "30"}),
    )


def _signed(validator: RequestValidator, base_url: str, kind: int, path: str, params: dict[str, str]) -> Request:
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": validator.compute_signature(base_url + path, params),
    }
    return kind, path, urlencode(params).encode("ascii"), headers


# --- the servers --------------------------------------------------------------------------


class Server:
    """One gunicorn, in its own session so that Ctrl-C reaches only this script, which stops it."""

    def __init__(self, name: str, app: str, port: int, workdir: Path, env: dict[str, str],
                 args: argparse.Namespace):
        self.name, self.app, self.port = name, app, port
        self.workers, self.threads = args.workers, args.threads
        self.log = workdir / f"{name}.log"
        self.env = os.environ | env
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [
            sys.executable, "-m", "gunicorn",
            "--bind", f"{HOST}:{self.port}",
            "--workers", str(self.workers),
            "--worker-class", "gthread",
            "--threads", str(self.threads),
            "--no-control-socket",
            "--log-level", "warning",
            "--error-logfile", str(self.log),
            self.app,
        ]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        for _ in range(HEALTH_TRIES):
            if self.process.poll() is not None:
                raise BenchError(f"{self.name}: gunicorn exited with {self.process.returncode}\n{self.log_tail()}")
            try:
                connection = http.client.HTTPConnection(HOST, self.port, timeout=1)
                connection.request("GET", "/healthz")
                response = connection.getresponse()
                response.read()
                connection.close()
                if response.status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise BenchError(f"{self.name}: /healthz did not answer within {HEALTH_TRIES / 10:.0f} s\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def pids(self) -> list[int]:
        """The gunicorn arbiter and its workers."""
        if self.process is None:
            return []
        master = self.process.pid
        try:
            children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        except OSError:
            children = []
        return [master, *map(int, children)]

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _machine() -> str:
    try:
        load = " ".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:
        load = "?"
    return f"{os.cpu_count()} CPUs, load average {load} before the run"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


# --- the load -----------------------------------------------------------------------------


def load(server: Server, checkins: list[tuple[Request, ...]], connections: int,
         postgres_pids: Callable[[], list[int]] = list) -> Phase:
    """Send every check-in once over `connections` keep-alive connections; time it, and count CPU used."""
    if not checkins:
        return Phase(0, 0.0, [[], [], []])
    context = mp.get_context()
    processes = min(CLIENT_PROCESSES, connections)
    split = [connections // processes + (1 if n < connections % processes else 0) for n in range(processes)]
    next_index = context.Value("q", 0)
    stop = context.Event()
    start = context.Barrier(connections + 1)
    results = context.Queue()
    deadline = time.monotonic() + max(120.0, 0.5 * len(checkins))  # generous: a stuck run ends, a slow one does not
    clients = [
        context.Process(target=_client, args=(server.port, checkins, threads, next_index, stop, start, results,
                                              deadline), daemon=True)
        for threads in split
    ]
    try:
        for client in clients:
            client.start()
        try:
            start.wait(timeout=60)  # every connection open: go
        except threading.BrokenBarrierError:
            raise BenchError(f"{server.name}: the load generator did not start") from None
        server_before, postgres_before = cpu_seconds(server.pids()), cpu_seconds(postgres_pids())
        parts = _collect(results, clients, deadline + 30)
        server_after, postgres_after = cpu_seconds(server.pids()), cpu_seconds(postgres_pids())
    except BaseException:
        stop.set()
        start.abort()
        raise
    finally:
        for client in clients:
            client.join(timeout=5)
            if client.is_alive():
                client.terminate()
                client.join()

    failures = sum(part["failures"] for part in parts)
    if failures:
        examples = "\n  ".join(example for part in parts for example in part["examples"][:3])
        raise BenchError(f"{server.name}: {failures} request(s) failed; the figures would be meaningless:\n  "
                         f"{examples}\n--- {server.name} gunicorn log (tail) ---\n{server.log_tail()}")
    done = sum(part["done"] for part in parts)
    if done != len(checkins):
        raise BenchError(f"{server.name}: only {done} of {len(checkins)} check-ins were sent")
    first = min(part["first"] for part in parts)
    last = max(part["last"] for part in parts)
    latencies = [[value for part in parts for value in part["latencies"][kind]] for kind in range(len(KINDS))]
    cpu = {
        "server": _used(server_before, server_after),
        "postgres": _used(postgres_before, postgres_after),
        "load generator": sum(part["cpu"] for part in parts),
    }
    return Phase(done, last - first, latencies, cpu)


def _collect(results, clients: list, deadline: float) -> list[dict]:
    """Each load process's totals; a process that dies or hangs fails the run instead of stalling it."""
    parts = []
    while len(parts) < len(clients):
        try:
            parts.append(results.get(timeout=1.0))
        except queue.Empty:
            if time.monotonic() > deadline:
                raise BenchError("the load generator did not finish in time") from None
            if any(client.exitcode not in (None, 0) for client in clients):
                raise BenchError("a load generator process died") from None
    return parts


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of each process, from /proc (Linux); empty elsewhere."""
    used = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    return used


def _used(before: dict[int, float], after: dict[int, float]) -> float:
    if not after:
        return math.nan
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def backend_pids(admin, database: str) -> list[int]:
    with admin.connect() as connection:
        return list(connection.scalars(text("SELECT pid FROM pg_stat_activity WHERE datname = :name"),
                                       {"name": database}))


def _client(port: int, checkins, threads: int, next_index, stop, start, results, deadline: float) -> None:
    """A load process: `threads` connections, each sending whole check-ins taken from the shared counter."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    started = time.process_time()
    lock = threading.Lock()
    totals = {"done": 0, "failures": 0, "examples": [], "first": math.inf, "last": -math.inf,
              "latencies": [[] for _ in KINDS]}

    def fail(message: str) -> None:
        with lock:
            totals["failures"] += 1
            totals["examples"].append(message)
        stop.set()

    def connection_loop() -> None:
        latencies: list[list[float]] = [[] for _ in KINDS]
        done, first, last = 0, math.inf, -math.inf
        connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)
        try:
            connection.connect()
        except OSError as error:
            fail(f"connect: {error}")
        try:
            start.wait(timeout=60)
        except threading.BrokenBarrierError:
            return
        while not stop.is_set():
            with next_index.get_lock():
                index = next_index.value
                next_index.value = index + 1
            if index >= len(checkins):
                break
            if time.monotonic() > deadline:
                fail("the load phase ran out of time")
                break
            timings = []
            problem = _send_checkin(connection, checkins[index], timings)
            if problem:
                fail(problem)
                break
            for kind, began, ended in timings:
                latencies[kind].append(ended - began)
            first, last = min(first, timings[0][1]), timings[-1][2]
            done += 1
        connection.close()
        with lock:
            totals["done"] += done
            totals["first"] = min(totals["first"], first)
            totals["last"] = max(totals["last"], last)
            for kind in range(len(KINDS)):
                totals["latencies"][kind].extend(latencies[kind])

    workers = [threading.Thread(target=connection_loop) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    totals["cpu"] = time.process_time() - started
    results.put(totals)


def _send_checkin(connection: http.client.HTTPConnection, checkin: tuple[Request, ...],
                  timings: list[tuple[int, float, float]]) -> str | None:
    """POST the webhooks of one check-in in order; append (kind, began, ended) per request. A problem stops it."""
    for kind, path, body, headers in checkin:
        began = time.perf_counter()
        try:
            connection.request("POST", path, body, headers)
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as error:
            return f"POST {path}: {type(error).__name__}: {error}"
        ended = time.perf_counter()
        problem = _check(kind, response, data)
        if problem:
            return f"POST {path}: {problem}"
        timings.append((kind, began, ended))
    return None


def _check(kind: int, response: http.client.HTTPResponse, data: bytes) -> str | None:
    if kind == STATUS:
        return None if response.status == 204 else f"status {response.status}, expected 204: {data[:200]!r}"
    if response.status != 200:
        return f"status {response.status}, expected 200: {data[:200]!r}"
    if not (response.getheader("Content-Type", "").startswith("text/xml") and b"<Response>" in data
            and (b"<Gather" in data if kind == ANSWER else b"<Hangup" in data or b"<Gather" in data)):
        return f"not the expected TwiML: {data[:200]!r}"
    return None


# --- reporting ----------------------------------------------------------------------------


def report(name: str, phase: Phase) -> None:
    every = phase.all_latencies()
    per_kind = ", ".join(
        f"{KINDS[kind]} {percentile(sorted(values), 50) * 1000:.1f}/{percentile(sorted(values), 99) * 1000:.1f}"
        for kind, values in enumerate(phase.latencies)
    )
    cpu = ", ".join(f"{party} {seconds / phase.checkins * 1000:.1f}" for party, seconds in phase.cpu.items()
                    if not math.isnan(seconds))
    print(f"{name}: {phase.checkins} check-ins ({3 * phase.checkins} requests) in {phase.seconds:.2f} s = "
          f"{phase.per_second:.1f} check-ins/s; per-request latency p50 {percentile(every, 50) * 1000:.1f} ms, "
          f"p99 {percentile(every, 99) * 1000:.1f} ms; p50/p99 ms by webhook: {per_kind}; "
          f"CPU ms per check-in: {cpu}", flush=True)


def percentile(ordered: list[float], p: float) -> float:
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _non_negative(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _raise_interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def _raise_timeout(_signum, _frame) -> None:
    raise BenchError("the global --timeout ran out")


if __name__ == "__main__":
    sys.exit(main())
