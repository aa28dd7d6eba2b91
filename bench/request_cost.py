"""The API's own CPU per request of the load benchmark's mix, in-process: ASGI calls straight into the app.

    .venv/bin/python -m bench.request_cost [--kind list_needs] [--path /healthz] [--requests 2000] [--reps 3]

Seeds a throwaway database like `bench.load` (same data, tokens and proposals from a real match run), builds the
app as `serve` does (JSON logs, here into /dev/null) and calls it without sockets or a load generator, one request
at a time, so the process's CPU time is the app's alone: no client, no uvicorn, no contention from other processes
beyond what the machine has. Prints CPU and wall ms per request for each repetition and the best; with --profile,
a cProfile of the last repetition. Compare code versions by alternating runs (old, new, old, new).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import logging
import os
import random
import time
from typing import Any

import httpx

from bench import load

Request = tuple[str, str, dict | None, str]


async def call(app: Any, request: Request) -> int:
    """One request through the app's ASGI interface; the response status."""
    method, path, body, token = request
    raw_path, _, query = path.partition("?")
    payload = b"" if body is None else json.dumps(body).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": raw_path,
        "raw_path": raw_path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    received, status = False, 0

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": payload, "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def requests_for(args: argparse.Namespace, fx: load.Fixture, n: int) -> list[Request]:
    if args.path:
        return [("GET", args.path, None, fx.coordinator)] * n
    mix = ((args.kind, 100),) if args.kind else load.MIX
    rng = random.Random(3)
    kinds, weights = [k for k, _ in mix], [w for _, w in mix]
    return [load.request_for(rng.choices(kinds, weights)[0], fx, rng) for _ in range(n)]


async def measure(app: Any, requests: list[Request], args: argparse.Namespace) -> None:
    statuses: dict[int, int] = {}
    profile = cProfile.Profile() if args.profile else None
    best = float("inf")
    for rep in range(args.reps):
        if profile and rep == args.reps - 1:
            profile.enable()
        cpu, wall = time.process_time(), time.perf_counter()
        for request in requests:
            status = await call(app, request)
            statuses[status] = statuses.get(status, 0) + 1
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if profile and rep == args.reps - 1:
            profile.disable()
            profile.dump_stats(args.profile)
        best = min(best, cpu * 1000 / len(requests))
        print(f"rep {rep}: CPU {cpu * 1000 / len(requests):.3f} ms/request, wall {wall * 1000 / len(requests):.3f}")
    what = args.path or args.kind or "mix"
    print(f"{what}: best CPU {best:.3f} ms/request over {args.reps} x {len(requests)}; statuses {statuses}")


async def main(args: argparse.Namespace) -> None:
    url = await load.create_database()
    try:
        await load.seed(url)
        os.environ.update(
            MATCH_DATABASE_URL=url,
            MATCH_JWT_SECRET=load.SECRET,
            MATCH_RATE_LIMIT="1000000/minute",
            MATCH_IN_PROCESS_WORKER="false",
            MATCH_LOAD_DEMO_DATA="false",
        )
        from service.app import create_app
        from service.observability import configure_logging
        from service.settings import Settings

        settings = Settings()
        configure_logging(settings)
        handler = logging.getLogger().handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(open(os.devnull, "w"))  # noqa: SIM115, ASYNC230 - once, before any measurement
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            fx = await load.fixture("http://in-process", transport=httpx.ASGITransport(app=app))
            warm, requests = requests_for(args, fx, 300), requests_for(args, fx, args.requests)
            for request in warm:
                await call(app, request)
            gc.collect()
            await measure(app, requests, args)
    finally:
        await load.drop_database(url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=[k for k, _ in load.MIX], help="one request kind of the mix alone")
    parser.add_argument("--path", help="GET this path (coordinator token) instead of the mix")
    parser.add_argument("--requests", type=int, default=2000, help="requests per repetition")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (the best is reported)")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the last repetition into FILE")
    asyncio.run(main(parser.parse_args()))
