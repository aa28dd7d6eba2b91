"""Benchmark: a province-sized match run through the service on PostgreSQL, phase by phase.

    .venv/bin/python -m bench.service_run [--stations 1056] [--changes 0.01]

Seeds a throwaway database through the service's own use cases (as the API would): one township station per
(county, township) of 湖北省's real counties, about five needs per station from the demo's need list (quantities
1–15, a fifth unsplittable), organizations registered in a county serving it (some the whole city) with one to
three offers of the service types their need list asks for. Then, as the worker does: a cold run of the province
(`runs.create` + `runs.execute`), and a second run after 1 % of the needs grew (the re-match), each timed by phase:
reading the inputs, the engine, writing the proposals (with their audit and webhook rows). The database is dropped
at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import sqlalchemy as sa

from bench.load import SECRET, YEAR, create_database, drop_database
from service import demo
from service.db import migrate
from service.db.models.catalog import ServiceType
from service.db.models.needs import Need, NeedItem, NeedUpdate
from service.db.models.offers import OfferItem
from service.db.models.organizations import OrganizationCreate
from service.db.models.runs import MatchRun, RunCreate
from service.db.models.stations import StationCreate
from service.db.session import Database
from service.reference import regions
from service.services import matching_input as inputs
from service.services import needs as need_service
from service.services import offers as offer_service
from service.services import organizations as organization_service
from service.services import runs as run_service
from service.services import stations as station_service
from service.services.principals import Principal
from service.settings import Settings

PROVINCE = "42"  # 湖北省
PERIOD = f"{YEAR}-12"
SPAN = (date(YEAR, 1, 1), date(YEAR, 12, 31))
ACTOR = Principal.system("service-run-bench")


def counties() -> list[regions.Region]:
    """湖北省's county-level divisions with coordinates, in code order."""
    table = regions._table()
    return [
        r
        for code, r in sorted(table.items())
        if code.startswith(PROVINCE) and code[4:6] != "00" and code.endswith("000000") and r.lat is not None
    ]


async def seed(db: Database, n_stations: int, rng: random.Random) -> dict[str, int]:
    """Stations, organizations, offers and needs of one province, through the use cases."""
    county = counties()
    templates = [item for items in demo.NEEDS.values() for item in items]
    per_county = -(-n_stations // len(county))
    stations: list[tuple[int, str]] = []
    async with db.sessionmaker() as session, session.begin():
        for k in range(n_stations):
            c = county[k // per_county]
            code = f"{c.code[:6]}{k % per_county + 1:03d}"
            s = await station_service.create(
                session,
                actor=ACTOR,
                data=StationCreate(
                    name=f"{c.name}第{k % per_county + 1}街道社工站",
                    region_code=code,
                    latitude=round(c.lat + rng.gauss(0, 0.08), 5),  # type: ignore[operator]
                    longitude=round(c.lon + rng.gauss(0, 0.08), 5),  # type: ignore[operator]
                ),
            )
            stations.append((s.id, c.code[:6]))
    n_needs = 0
    async with db.sessionmaker() as session, session.begin():
        for station_id, _ in stations:
            items = []
            for _ in range(5):
                t, title, _q, g, c_, p, _split = rng.choice(templates)
                items.append(
                    NeedItem(
                        service_type=t,
                        title=title,
                        quantity=rng.randint(1, 15),
                        beneficiary_group=g,
                        beneficiary_count=c_,
                        priority=p,
                        splittable=rng.random() >= 0.2,
                        window_start=SPAN[0],
                        window_end=SPAN[1],
                    )
                )
            n_needs += len(
                await need_service.submit_list(session, actor=ACTOR, station_id=station_id, items=items, max_items=100)
            )
    types = sorted({t for t, *_ in templates})
    async with db.engine.connect() as conn:  # an offer's service types share one unit (catalog rule)
        unit_of = dict((await conn.execute(sa.select(ServiceType.code, ServiceType.unit))).all())
    same_unit = {t: [u for u in types if unit_of[u] == unit_of[t]] for t in types}
    n_orgs = n_offers = 0
    used_counties = sorted({c for _, c in stations})
    async with db.sessionmaker() as session, session.begin():
        for k in range(round(n_stations * 2000 / 1056)):
            home = rng.choice(used_counties)
            area = [home] if rng.random() < 0.85 else [home[:4] + "00"]
            o = await organization_service.create(
                session,
                actor=ACTOR,
                data=OrganizationCreate(
                    name=f"湖北省第{k + 1}社会工作服务中心",
                    credit_code=demo._credit_code("2", home, 10_000 + k),
                    kind="social_service_agency",
                    home_region_code=home,
                    service_area=area,
                    expertise=sorted({t.split(".")[0] for t in types}),
                    max_stations=rng.choice([None, None, None, None, 3]),
                ),
            )
            n_orgs += 1
            offers = [
                OfferItem(
                    service_types=_types(rng, types, same_unit),
                    title=f"服务项目{j + 1}",
                    capacity=rng.randint(2, 13),
                    window_start=SPAN[0],
                    window_end=SPAN[1],
                )
                for j in range(rng.randint(1, 3))
            ]
            n_offers += len(
                await offer_service.submit_list(session, actor=ACTOR, organization_id=o.id, items=offers, max_items=100)
            )
    async with db.engine.connect() as conn:  # planner statistics, as autovacuum would have them
        await conn.execute(sa.text("ANALYZE"))
        await conn.commit()
    return {"stations": len(stations), "organizations": n_orgs, "offers": n_offers, "needs": n_needs}


def _types(rng: random.Random, types: list[str], same_unit: dict[str, list[str]]) -> list[str]:
    """One or two service types of one unit."""
    first = rng.choice(types)
    return sorted({first, rng.choice(same_unit[first])}) if rng.random() < 0.5 else [first]


class Phases:
    """Wall time of named calls (the service's own functions, wrapped for the run's duration)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, name: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def timed(*args: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await fn(*args, **kw)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0

        return timed


async def one_run(db: Database, settings: Settings) -> dict[str, Any]:
    """A run of the province as the worker executes it, with its phases."""
    phases = Phases()
    load, store = inputs.load, run_service._store
    inputs.load = phases.wrap("read inputs", load)  # type: ignore[assignment]
    run_service._store = phases.wrap("write proposals", store)  # type: ignore[assignment]
    try:
        t0 = time.perf_counter()
        run = await run_service.create(
            db, settings, actor=ACTOR, data=RunCreate(region_code=f"{PROVINCE}0000", period=PERIOD)
        )
        await run_service.execute(db, settings, run_id=run.id)
        total = time.perf_counter() - t0
    finally:
        inputs.load, run_service._store = load, store  # type: ignore[assignment]
    async with db.sessionmaker() as session:
        row = await session.get_one(MatchRun, run.id)
    assert row.status == "succeeded", row.error
    engine = sum(v for k, v in row.timings.items() if k in ("candidates", "solve", "explain"))
    return {
        "total": total,
        **phases.seconds,
        "engine": engine,
        "counts": row.counts,
        "churn": row.churn,
        "status": row.solver_status,
    }


async def grow_needs(db: Database, share: float, rng: random.Random) -> int:
    """`share` of the open needs ask for one unit more (through the use case, as a station would)."""
    async with db.sessionmaker() as session, session.begin():
        ids = sorted((await session.scalars(sa.select(Need.id))).all())
        chosen = rng.sample(ids, max(1, round(len(ids) * share)))
        for need_id in chosen:
            need = await session.get_one(Need, need_id)
            await need_service.update(
                session,
                actor=ACTOR,
                need_id=need_id,
                data=NeedUpdate(quantity=need.quantity + 1),
                expected_version=need.version,
            )
    return len(chosen)


def row(name: str, r: dict[str, Any]) -> str:
    other = r["total"] - r.get("read inputs", 0) - r["engine"] - r.get("write proposals", 0)
    c = r["counts"]
    return (
        f"| {name} | {r['total']:.2f} | {r.get('read inputs', 0):.2f} | {r['engine']:.2f} "
        f"| {r.get('write proposals', 0):.2f} | {other:.2f} | {c.get('proposals_added', 0):,} "
        f"| {c.get('proposals_kept', 0):,} | {c.get('proposals_superseded', 0):,} | {c.get('components_reused', 0)} "
        f"| {c.get('needs_re_solved_locally', 0):,} | {r['status']} |"
    )


async def main_async(n_stations: int, share: float) -> None:
    url = await create_database()
    settings = Settings(database_url=url, jwt_secret=SECRET, in_process_worker=False)
    db = Database.from_settings(settings)
    rng = random.Random(11)
    try:
        await migrate.upgrade(db.engine)
        t0 = time.perf_counter()
        counts = await seed(db, n_stations, rng)
        print(f"seeded {counts} in {time.perf_counter() - t0:.1f} s (database {db.engine.url.database})", flush=True)
        cold = await one_run(db, settings)
        changed = await grow_needs(db, share, rng)
        again = await one_run(db, settings)
        print()
        print(
            "| run | total s | read inputs s | engine s | write proposals s | other s | proposals added | kept "
            "| superseded | components reused | needs re-solved locally | status |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        print(row("cold", cold))
        print(row(f"after {changed} needs grew", again))
    finally:
        await db.dispose()
        await drop_database(url)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stations", type=int, default=1056)
    ap.add_argument("--changes", type=float, default=0.01, help="share of needs that grow before the second run")
    args = ap.parse_args()
    asyncio.run(main_async(args.stations, args.changes))


if __name__ == "__main__":
    main()
