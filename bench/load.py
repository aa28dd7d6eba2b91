"""Load benchmark: the real API vs a bare Starlette + asyncpg app running the same SQL, on one local PostgreSQL.

    nice -n 10 .venv/bin/python -m bench.load [--duration 10] [--rate 200] [--concurrency 16]

Creates its own database on the server at MATCH_TEST_DATABASE_URL (default: local postgres, as the test suite),
migrates it and seeds the 宜昌市 demo city plus extra needs through the service's own code, makes proposals with a
match run, then starts both apps on 127.0.0.1 (subprocesses) and drives each with an httpx load generator over the
mix below: first as fast as `--concurrency` closed-loop clients go, then open-loop at a fixed offered rate (latency
counted from each request's scheduled send time, so a stalled server cannot hide its queue). Prints one table with
API/bare ratios; drops the database at the end. Loopback only; bounded by --duration and --max-requests per phase.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import asyncpg
import httpx
import psutil
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from service.settings import normalise_database_url

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = normalise_database_url(
    os.environ.get("MATCH_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
)
SECRET = "bench-load-secret-0123456789-0123456789-abcdef"
MIX = (("list_needs", 50), ("get_proposal", 30), ("post_need", 10), ("accept", 10))  # percent of requests
EXTRA_NEEDS_PER_STATION = 40
YEAR = date.today().year


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# --- database ---------------------------------------------------------------------------------------------------------


async def create_database() -> str:
    """A fresh database on the local server (same approach as tests/conftest.py)."""
    name = f"jiedui_load_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(libpq(ADMIN_URL), timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


async def drop_database(url: str) -> None:
    conn = await asyncpg.connect(libpq(ADMIN_URL), timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    finally:
        await conn.close()


async def seed(url: str) -> dict[str, int]:
    """Migrate, load the demo city and more needs per station through the service's own use cases."""
    from service import demo
    from service.db import migrate
    from service.db.models.needs import NeedItem
    from service.db.session import Database
    from service.services import needs as need_service
    from service.services.principals import Principal
    from service.settings import Settings

    db = Database.from_settings(Settings(database_url=url, jwt_secret=SECRET))
    try:
        await migrate.upgrade(db.engine)
        async with db.sessionmaker() as session, session.begin():
            counts = await demo.load(session)
        templates = [item for items in demo.NEEDS.values() for item in items]
        rng = random.Random(7)
        async with db.sessionmaker() as session, session.begin():
            for station_id in range(1, counts["stations"] + 1):
                items = []
                for i in range(EXTRA_NEEDS_PER_STATION):
                    t, title, q, g, c, p, split = rng.choice(templates)
                    month = 1 + i % 12
                    items.append(
                        NeedItem(
                            service_type=t,
                            title=f"{title}（{month}月）",
                            quantity=q,
                            beneficiary_group=g,
                            beneficiary_count=c,
                            priority=p,
                            splittable=split,
                            window_start=date(YEAR, month, 1),
                            window_end=date(YEAR, 12, 31),
                        )
                    )
                await need_service.submit_list(
                    session, actor=Principal.system("load-bench"), station_id=station_id, items=items, max_items=100
                )
        counts["needs"] += counts["stations"] * EXTRA_NEEDS_PER_STATION
        async with db.engine.connect() as conn:  # planner statistics, as autovacuum would have them in production
            await conn.execute(sa.text("ANALYZE"))
            await conn.commit()
        return counts
    finally:
        await db.dispose()


# --- the bare app -----------------------------------------------------------------------------------------------------


def bare_app(dsn: str) -> object:
    """Starlette + asyncpg doing the API's SQL for the mix, with no auth, validation, ORM or framework layers."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    pool: asyncpg.Pool | None = None

    @contextlib.asynccontextmanager
    async def lifespan(_app: object) -> AsyncIterator[None]:
        nonlocal pool
        pool = await asyncpg.create_pool(dsn, min_size=5, max_size=10)  # up to 10 kept open, as the API (10 + 0)
        yield
        await pool.close()

    def row(r: asyncpg.Record) -> dict:
        return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()}

    async def list_needs(request: Request) -> JSONResponse:
        region = request.query_params["region"]
        rows = await pool.fetch(
            "SELECT n.* FROM needs n JOIN stations s ON s.id = n.station_id "
            "WHERE s.region_code LIKE $1 AND n.status = 'open' ORDER BY n.id LIMIT 21",
            region + "%",
        )
        return JSONResponse({"items": [row(r) for r in rows[:20]], "next_cursor": None})

    async def get_proposal(request: Request) -> JSONResponse:
        r = await pool.fetchrow("SELECT * FROM proposals WHERE id = $1", int(request.path_params["pid"]))
        out = row(r)
        out["explanation"] = json.loads(out["explanation"])
        return JSONResponse(out)

    async def post_need(request: Request) -> JSONResponse:
        body = await request.json()
        async with pool.acquire() as conn, conn.transaction():
            region = await conn.fetchval("SELECT region_code FROM stations WHERE id = $1", body["station_id"])
            r = await conn.fetchrow(
                "INSERT INTO needs (station_id, service_type_code, title, description, quantity, beneficiary_group,"
                " beneficiary_count, priority, window_start, window_end, splittable, mode, status, version,"
                " created_at, updated_at, committed) VALUES ($1,$2,$3,'',$4,$5,$6,$7,$8,$9,$10,'onsite','open',1,"
                " now(), now(), 0) RETURNING *",
                body["station_id"],
                body["service_type"],
                body["title"],
                body["quantity"],
                body["beneficiary_group"],
                body["beneficiary_count"],
                body.get("priority", 2),
                date.fromisoformat(body["window_start"]),
                date.fromisoformat(body["window_end"]),
                body["splittable"],
            )
            out = row(r)
            await conn.execute(
                "INSERT INTO audit_events (occurred_at, actor_subject, actor_role, action, object_type, object_id,"
                " region_code, after) VALUES (now(), 'bare', 'station', 'create', 'need', $1, $2, $3::jsonb)",
                str(r["id"]),
                region,
                json.dumps(out),
            )
            await conn.execute(
                "INSERT INTO rematch_requests (region_code, reason, object_type, object_id, created_at)"
                " VALUES ($1, 'need_created', 'need', $2, now())",
                region,
                r["id"],
            )
        return JSONResponse(out, status_code=201)

    async def accept(request: Request) -> JSONResponse:
        pid = int(request.path_params["pid"])
        async with pool.acquire() as conn, conn.transaction():
            before = await conn.fetchrow("SELECT * FROM proposals WHERE id = $1 FOR UPDATE", pid)
            r = await conn.fetchrow(
                "UPDATE proposals SET station_answer = 'accepted', answered_at = now(), version = version + 1"
                " WHERE id = $1 RETURNING *",
                pid,
            )
            out = row(r)
            await conn.execute(
                "INSERT INTO audit_events (occurred_at, actor_subject, actor_role, action, object_type, object_id,"
                " region_code, before, after) VALUES (now(), 'bare', 'station', 'accept', 'proposal', $1, $2,"
                " $3::jsonb, $4::jsonb)",
                str(pid),
                r["region_code"],
                json.dumps(row(before)),
                json.dumps(out),
            )
        return JSONResponse(out)

    routes = [
        Route("/api/v1/needs", list_needs, methods=["GET"]),
        Route("/api/v1/needs", post_need, methods=["POST"]),
        Route("/api/v1/proposals/{pid:int}", get_proposal, methods=["GET"]),
        Route("/api/v1/proposals/{pid:int}/accept", accept, methods=["POST"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def bare_from_env() -> object:
    """The bare app on MATCH_DATABASE_URL (an import string, so uvicorn can start it in several processes)."""
    return bare_app(libpq(os.environ["MATCH_DATABASE_URL"]))


# --- processes --------------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


async def wait_up(base: str, path: str, proc: subprocess.Popen, wait_s: float = 60) -> None:
    deadline = time.monotonic() + wait_s
    async with httpx.AsyncClient(base_url=base) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            try:
                if (await http.get(path)).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{base}{path} not up after {wait_s}s")


# --- load generation --------------------------------------------------------------------------------------------------


@dataclass
class Fixture:
    """What the requests pick from: regions, stations, proposals (ids and their stations), tokens."""

    regions: list[str]
    station_ids: list[int]
    proposals: list[tuple[int, int]]
    coordinator: str
    station_tokens: dict[int, str]
    mix: tuple[tuple[str, int], ...] = MIX


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    by_kind: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    database_cpu: float = 0.0

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def pct(self, q: float, kind: str | None = None) -> float:
        ordered = sorted(self.latencies if kind is None else self.by_kind.get(kind, []))
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


def request_for(kind: str, fx: Fixture, rng: random.Random) -> tuple[str, str, dict | None, str]:
    if kind == "list_needs":
        return "GET", f"/api/v1/needs?region={rng.choice(fx.regions)}&status=open&limit=20", None, fx.coordinator
    if kind == "get_proposal":
        return "GET", f"/api/v1/proposals/{rng.choice(fx.proposals)[0]}", None, fx.coordinator
    if kind == "post_need":
        station = rng.choice(fx.station_ids)
        body = {
            "station_id": station,
            "service_type": "elderly_care.home_visit",
            "title": "压测新增探访需求",
            "quantity": rng.randint(1, 30),
            "beneficiary_group": "elderly_living_alone",
            "beneficiary_count": 10,
            "priority": 2,
            "splittable": True,
            "window_start": f"{YEAR}-12-01",
            "window_end": f"{YEAR}-12-31",
        }
        return "POST", "/api/v1/needs", body, fx.station_tokens[station]
    pid, station = rng.choice(fx.proposals)
    return "POST", f"/api/v1/proposals/{pid}/accept", None, fx.station_tokens[station]


class HttpxClient:
    """The load generator's requests through httpx (about 1 ms of client CPU per request)."""

    def __init__(self, base: str, connections: int) -> None:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self.http = httpx.AsyncClient(base_url=base, limits=limits, timeout=30)

    async def __aenter__(self) -> HttpxClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.http.aclose()

    async def request(self, method: str, path: str, body: dict | None, token: str) -> int:
        r = await self.http.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
        return r.status_code


class RawClient:
    """HTTP/1.1 keep-alive connections over asyncio streams, requests written as bytes and responses read by
    Content-Length: a small fraction of httpx's client CPU, so one process can offer 200 req/s while sharing the
    2 cores with the servers (with httpx the generator itself topped out near 140 req/s)."""

    def __init__(self, base: str, connections: int) -> None:
        url = httpx.URL(base)
        self.host, self.port = url.host, url.port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.slots = asyncio.Semaphore(connections)

    async def __aenter__(self) -> RawClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        for _, writer in self.idle:
            writer.close()

    async def request(self, method: str, path: str, body: dict | None, token: str) -> int:
        payload = b"" if body is None else json.dumps(body).encode()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        ).encode()
        async with self.slots:
            try:
                return await self._exchange(head + payload, reuse=bool(self.idle))
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                if isinstance(exc, asyncio.IncompleteReadError) and exc.partial:
                    raise
                # The server closed an idle keep-alive connection (uvicorn: after 5 s): retry once on a fresh one.
                return await self._exchange(head + payload, reuse=False)

    async def _exchange(self, request: bytes, *, reuse: bool) -> int:
        conn = self.idle.pop() if reuse else await asyncio.open_connection(self.host, self.port)
        reader, writer = conn
        try:
            writer.write(request)
            status, length, close = _response_head(await reader.readuntil(b"\r\n\r\n"))
            await reader.readexactly(length)
        except BaseException:
            writer.close()
            raise
        if close:
            writer.close()
        else:
            self.idle.append(conn)
        return status


def _response_head(raw: bytes) -> tuple[int, int, bool]:
    """Status, Content-Length and whether the server closes the connection."""
    lines = raw.split(b"\r\n")
    length, close = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            close = value.strip().lower() == b"close"
        elif name == b"transfer-encoding":
            raise ValueError("chunked responses are not supported by the raw client")
    return int(lines[0][9:12]), length, close


CLIENTS = {"raw": RawClient, "httpx": HttpxClient}
LoadClient = RawClient | HttpxClient


async def one(http: LoadClient, fx: Fixture, rng: random.Random, res: Result, started: float) -> None:
    kind = rng.choices([k for k, _ in fx.mix], weights=[w for _, w in fx.mix])[0]
    method, path, body, token = request_for(kind, fx, rng)
    try:
        status = await http.request(method, path, body, token)
        ok = status < 400
        key = f"{kind}:{status}"
    except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, httpx.HTTPError) as exc:
        ok, key = False, f"{kind}:{type(exc).__name__}"
    if ok:
        res.latencies.append(time.perf_counter() - started)
        res.by_kind.setdefault(kind, []).append(res.latencies[-1])
    else:
        res.errors[key] = res.errors.get(key, 0) + 1


class CpuMeter:
    """CPU share of the server (with its worker processes, if any) and of this client over a phase."""

    def __init__(self, pid: int) -> None:
        self.server, self.client = psutil.Process(pid), psutil.Process()
        self.workers = self.server.children(recursive=True)  # uvicorn --workers N: the work is in the children

    def __enter__(self) -> CpuMeter:
        self.s0, self.c0, self.t0 = self._server_cpu(), self._cpu(self.client), time.perf_counter()
        self.d0 = self._database_cpu()
        return self

    def __exit__(self, *_: object) -> None:
        wall = time.perf_counter() - self.t0
        self.server_share = (self._server_cpu() - self.s0) / wall
        self.client_share = (self._cpu(self.client) - self.c0) / wall
        self.database_share = sum(cpu - self.d0.get(pid, cpu) for pid, cpu in self._database_cpu().items()) / wall

    @classmethod
    def _database_cpu(cls) -> dict[int, float]:
        """Every local PostgreSQL process (both apps share the server; only the app under load is busy)."""
        out = {}
        for p in psutil.process_iter(["name"]):
            if p.info["name"] == "postgres":
                with contextlib.suppress(psutil.Error):
                    out[p.pid] = cls._cpu(p)
        return out

    def _server_cpu(self) -> float:
        return sum(self._cpu(p) for p in (self.server, *self.workers))

    @staticmethod
    def _cpu(p: psutil.Process) -> float:
        t = p.cpu_times()
        return t.user + t.system


async def closed_loop(
    base: str, fx: Fixture, pid: int, *, concurrency: int, duration: float, limit: int, client: str = "raw"
) -> Result:
    """As fast as `concurrency` clients go, each sending its next request when the last one answered."""
    res, rng = Result(), random.Random(1)
    async with CLIENTS[client](base, concurrency) as http:
        sent = 0
        deadline = time.perf_counter() + duration

        async def client() -> None:
            nonlocal sent
            while time.perf_counter() < deadline and sent < limit:
                sent += 1
                await one(http, fx, rng, res, time.perf_counter())

        with CpuMeter(pid) as cpu:
            t0 = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(concurrency)))
            res.elapsed = time.perf_counter() - t0
    res.server_cpu, res.client_cpu, res.database_cpu = cpu.server_share, cpu.client_share, cpu.database_share
    return res


async def open_loop(base: str, fx: Fixture, pid: int, *, rate: float, duration: float, client: str = "raw") -> Result:
    """A fixed offered rate; latency runs from the scheduled send time (no coordinated omission)."""
    res, rng = Result(), random.Random(2)
    n = int(rate * duration)
    # In flight at most 64: httpcore's pool burns client CPU on long queues of waiting requests. A request waiting
    # for a slot still counts its wait, since latency runs from its scheduled time.
    slots = asyncio.Semaphore(64)

    async def bounded(http: LoadClient, due: float) -> None:
        async with slots:
            await one(http, fx, rng, res, due)

    async with CLIENTS[client](base, 64) as http:
        tasks = []
        with CpuMeter(pid) as cpu:
            t0 = time.perf_counter()
            for i in range(n):
                due = t0 + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(bounded(http, due)))
            await asyncio.gather(*tasks)
            res.elapsed = time.perf_counter() - t0
    res.server_cpu, res.client_cpu, res.database_cpu = cpu.server_share, cpu.client_share, cpu.database_share
    return res


async def fixture(base: str, transport: httpx.AsyncBaseTransport | None = None) -> Fixture:
    """Tokens, and proposals from a real match run, through the API at `base` (or an in-process `transport`)."""
    from service.services import tokens
    from service.services.principals import Role
    from service.settings import Settings

    settings = Settings(database_url="postgresql+asyncpg://unused/x", jwt_secret=SECRET)

    def tok(role: Role, scope: str) -> str:
        return tokens.issue(settings, subject=f"load-{role}-{scope}", role=role, scope=scope, lifetime_s=3600)

    coordinator = tok(Role.coordinator, "420500")
    headers = {"Authorization": f"Bearer {coordinator}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120, transport=transport) as http:
        run = await http.post("/api/v1/match-runs", json={"region_code": "420500", "period": f"{YEAR}-12"})
        run.raise_for_status()
        proposals = (await http.get("/api/v1/proposals", params={"limit": 200, "status": "proposed"})).json()["items"]
        stations = (await http.get("/api/v1/stations", params={"limit": 200})).json()["items"]
    if not proposals:
        raise RuntimeError(f"the match run made no proposals: {run.json()}")
    regions = sorted({s["region_code"][:6] for s in stations} | {"420500"})
    ids = [s["id"] for s in stations]
    return Fixture(
        regions,
        ids,
        [(p["id"], p["station_id"]) for p in proposals],
        coordinator,
        {i: tok(Role.station, str(i)) for i in ids},
    )


# --- main -------------------------------------------------------------------------------------------------------------


async def bench(args: argparse.Namespace) -> None:
    url = await create_database()
    procs: list[subprocess.Popen] = []
    try:
        counts = await seed(url)
        print(f"database {make_url(url).database}: {counts}", flush=True)
        env = {
            **os.environ,
            "MATCH_DATABASE_URL": url,
            "MATCH_JWT_SECRET": SECRET,
            "MATCH_RATE_LIMIT": "1000000/minute",
            "MATCH_IN_PROCESS_WORKER": "false",
            "MATCH_LOAD_DEMO_DATA": "false",
            "MATCH_HOST": "127.0.0.1",
        }
        api_port, bare_port = free_port(), free_port()
        logs = Path(args.log_dir)
        logs.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before any load
        api_cmd = [sys.executable, "-m", "service.cli", "serve"]
        if args.processes > 1:  # the production app under uvicorn's process manager, sharing one listening socket
            api_cmd = [
                sys.executable,
                "-m",
                "uvicorn",
                "service.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(api_port),
                "--workers",
                str(args.processes),
                "--no-access-log",
            ]
        api = start(api_cmd, env | {"MATCH_PORT": str(api_port)}, logs / "load-api.log")
        bare = start(
            [sys.executable, "-m", "bench.load", "--serve-bare", str(bare_port), "--processes", str(args.processes)],
            env,
            logs / "load-bare.log",
        )
        procs += [api, bare]
        api_base, bare_base = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{bare_port}"
        await wait_up(api_base, "/readyz", api)
        await wait_up(bare_base, "/api/v1/needs?region=42", bare)
        fx = await fixture(api_base)
        fx.mix = args.mix
        gc.collect()  # the client's own setup garbage must not pause it mid-measurement (full collections ~80 ms)
        gc.freeze()
        print(f"{len(fx.proposals)} proposals, {len(fx.station_ids)} stations, regions {fx.regions}", flush=True)
        results: dict[tuple[str, str], Result] = {}
        for name, base, proc in (("bare", bare_base, bare), ("api", api_base, api)):
            kw = {"client": args.client}
            await closed_loop(base, fx, proc.pid, concurrency=args.concurrency, duration=2, limit=2000, **kw)  # warm
            with profiled(proc.pid, args.profile if name == "api" else None, args.duration):
                results[(name, "max")] = await closed_loop(
                    base,
                    fx,
                    proc.pid,
                    concurrency=args.concurrency,
                    duration=args.duration,
                    limit=args.max_requests,
                    **kw,
                )
            results[(name, "rate")] = await open_loop(base, fx, proc.pid, rate=args.rate, duration=args.duration, **kw)
        report(results, args)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        await drop_database(url)
        print(f"dropped {make_url(url).database}")


@contextlib.contextmanager
def profiled(pid: int, out: str | None, duration: float) -> Iterator[None]:
    """py-spy (if asked for) sampling the API and its workers over the phase, as collapsed stacks for flamegraphs."""
    if not out:
        yield
        return
    spy = subprocess.Popen(
        [
            shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"),
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--rate",
            "200",
            "--format",
            "raw",
            "--duration",
            str(math.ceil(duration)),
            "--output",
            out,
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        spy.wait(timeout=duration + 30)
        print(f"py-spy profile of the API's max-throughput phase: {out}", flush=True)


def report(results: dict[tuple[str, str], Result], args: argparse.Namespace) -> None:
    rows = [
        ("max throughput", "max", f"closed loop, {args.concurrency} clients, {args.duration:g} s"),
        (f"{args.rate:g} req/s offered", "rate", f"open loop, {args.duration:g} s"),
    ]
    print()
    print(
        "| phase | app | requests | errors | req/s | p50 ms | p99 ms | server CPU | server CPU ms/req "
        "| PostgreSQL CPU ms/req | client CPU |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for title, key, _ in rows:
        for app in ("bare", "api"):
            r = results[(app, key)]
            errs = sum(r.errors.values())
            print(
                f"| {title} | {app} | {len(r.latencies)} | {errs} | {r.throughput:.0f} | {r.pct(0.5):.1f} | "
                f"{r.pct(0.99):.1f} | {r.server_cpu:.0%} | {r.server_cpu * 1000 / max(r.throughput, 1e-9):.2f} | "
                f"{r.database_cpu * 1000 / max(r.throughput, 1e-9):.2f} | {r.client_cpu:.0%} |"
            )
    print()
    for title, key, how in rows:
        a, b = results[("api", key)], results[("bare", key)]
        print(
            f"- {title} ({how}): API/bare throughput {a.throughput / b.throughput:.2f}, "
            f"p50 {a.pct(0.5) / b.pct(0.5):.1f}x, p99 {a.pct(0.99) / b.pct(0.99):.1f}x"
        )
    for title, key, _ in rows:
        r = results[("api", key)]
        kinds = ", ".join(f"{k} {r.pct(0.5, k):.1f}/{r.pct(0.99, k):.1f}" for k, _ in MIX if k in r.by_kind)
        print(f"- API p50/p99 ms by kind, {title}: {kinds}")
    max_ratio = results[("api", "max")].throughput / results[("bare", "max")].throughput
    p99 = results[("api", "rate")].pct(0.99)
    print(f"- target API ≥ 50 % of bare throughput: {'MET' if max_ratio >= 0.5 else 'MISSED'} ({max_ratio:.0%})")
    print(f"- target API p99 ≤ 50 ms at {args.rate:g} req/s: {'MET' if p99 <= 50 else 'MISSED'} ({p99:.1f} ms)")
    for (app, key), r in results.items():
        if r.errors:
            print(f"- errors {app}/{key}: {r.errors}")


def parse_mix(text: str) -> tuple[tuple[str, int], ...]:
    """`list_needs=100` or `list_needs=50,get_proposal=50`: one request kind alone, to cost it."""
    kinds = {k for k, _ in MIX}
    mix = tuple((k.strip(), int(w)) for k, _, w in (part.partition("=") for part in text.split(",")))
    if not mix or any(k not in kinds or w < 0 for k, w in mix) or not any(w for _, w in mix):
        raise argparse.ArgumentTypeError(f"expected kind=percent,… with kinds from {sorted(kinds)}")
    return mix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10, help="seconds per measured phase")
    parser.add_argument("--rate", type=float, default=200, help="offered rate of the fixed-rate phase, req/s")
    parser.add_argument("--concurrency", type=int, default=16, help="clients of the max-throughput phase")
    parser.add_argument("--max-requests", type=int, default=20000, help="cap per max-throughput phase")
    parser.add_argument("--client", choices=sorted(CLIENTS), default="raw", help="load generator's HTTP client")
    parser.add_argument("--processes", type=int, default=1, help="server processes of each app (uvicorn --workers)")
    parser.add_argument("--log-dir", default=str(ROOT / "var" / "bench"), help="server logs go here")
    parser.add_argument(
        "--mix", type=parse_mix, default=MIX, help="request mix as kind=percent,… (default: %(default)s)"
    )
    parser.add_argument("--profile", metavar="FILE", help="py-spy the API's max-throughput phase into FILE (raw)")
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        import uvicorn

        uvicorn.run(
            "bench.load:bare_from_env",
            factory=True,
            host="127.0.0.1",
            port=args.serve_bare,
            workers=args.processes,
            log_level="warning",
            access_log=False,
        )
        return
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
