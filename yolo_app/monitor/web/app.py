"""The monitor's web page as a Starlette application: the cameras live, the events with their clips and review
marks, the counts per hour, the status JSON and the Prometheus metrics, behind the gate in ``guard.py``.

Every handler that touches the database or draws a picture is a plain function: Starlette runs it on its
thread pool, so the server's event loop never waits on SQLite or OpenCV, and neither waits on a browser.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from yolo_app.errors import describe
from yolo_app.monitor.service_config import Web
from yolo_app.monitor.events import EVENT_TYPES, EventStore
from yolo_app.monitor.metrics import METRICS_CONTENT_TYPE, render_metrics
from yolo_app.monitor.web.auth import SESSION_COOKIE, SESSION_S, LoginLimiter, Sessions
from yolo_app.monitor.web.charts import bar_chart
from yolo_app.monitor.web.guard import Guard, client_address
from yolo_app.monitor.web.live import LivePictures
from yolo_app.monitor.web.queries import EventBrowser, EventFilter

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Site:
    """What the page shows and changes: the monitor's, or a test's."""

    settings: Web
    storage: Path  # evidence paths in the database are relative to it
    snapshot: Callable[[], dict]  # the status JSON
    store: EventStore  # review marks are written through the monitor's one writer
    browser: EventBrowser  # pages are read on a connection of their own
    live: LivePictures
    counts: Callable[[], dict[str, dict[str, dict[str, int]]]]  # camera -> zone/line -> live counts since start


class BadQuery(ValueError):
    pass


def build_app(site: Site) -> Starlette:
    sessions, limiter = Sessions(), LoginLimiter()
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)
    templates = Jinja2Templates(env=env)

    def page(request: Request, name: str, **context) -> Response:
        return templates.TemplateResponse(request, name, {
            "csrf": request.state.csrf, "logged_in": request.state.session is not None,
            "password": site.settings.password is not None, "unreviewed": site.browser.unreviewed(), **context})

    # --- pages ------------------------------------------------------------------------------------------
    def cameras(request: Request) -> Response:
        if "text/html" not in request.headers.get("accept", ""):  # `curl /` keeps getting the status JSON
            return status(request)
        snap = site.snapshot()
        return page(request, "cameras.html", active="cameras", cameras=snap.get("cameras") or {},
                    period_ms=round(1000 * site.live.period))

    def events(request: Request) -> Response:
        q = request.query_params
        try:
            f = EventFilter(camera=q.get("camera") or None, type=_choice(q.get("type"), EVENT_TYPES),
                            label=q.get("label") or None, zone=q.get("zone") or None, day=_day(q.get("day")),
                            tz_offset_min=_int(q.get("tz"), 0, -900, 900), unreviewed=q.get("reviewed") == "no")
            before, after = _int(q.get("before"), None, 0), _int(q.get("after"), None, 0)
        except BadQuery as exc:
            return PlainTextResponse(f"{exc}\n", 400)
        result = site.browser.page(f, before=before, after=after)
        base = {k: v for k, v in q.items() if k not in ("before", "after") and v}
        choices = site.browser.choices()
        return page(request, "events.html", active="events", page=result, filter=f, query=base,
                    cameras=sorted(set(site.counts()) | set(choices["camera"])), types=EVENT_TYPES, choices=choices)

    def counts(request: Request) -> Response:
        hourly = site.browser.hourly()
        live = site.counts()
        charts, totals = {}, {}
        for camera in sorted(set(live) | set(hourly.series)):
            zones, series = live.get(camera, {}), hourly.series.get(camera, {})
            # A chart for every zone and line direction the camera has now (empty ones too), then for any
            # the database still has from before (a zone renamed or removed).
            names = [n for name, c in zones.items() for n in ([name] if "now" in c else [f"{name} in", f"{name} out"])]
            names += sorted(set(series) - set(names))
            empty = [0] * len(hourly.hours)
            charts[camera] = [(n, sum(series.get(n, empty)), bar_chart(hourly.hours, series.get(n, empty)))
                              for n in names]
            totals[camera] = [_totals_row(name, c, series) for name, c in zones.items()]
        return page(request, "counts.html", active="counts", charts=charts, totals=totals)

    def login_form(request: Request) -> Response:
        return page(request, "login.html", active=None, error=None, next=_local_path(request.query_params.get("next")))

    async def login(request: Request) -> Response:
        address = client_address(request)
        wait = limiter.wait_s(address)
        form = await request.form()
        target = _local_path(str(form.get("next", "/")))
        if wait > 0:
            response = page(request, "login.html", active=None, next=target,
                            error=f"Too many wrong passwords: try again in {wait:.0f} s.")
            response.status_code, response.headers["Retry-After"] = 429, str(max(1, round(wait)))
            return response
        if site.settings.password is None or not await run_in_threadpool(
                site.settings.password.verify, str(form.get("password", ""))):
            limiter.failed(address)
            log.warning("web: a wrong password from %s", address)
            response = page(request, "login.html", active=None, next=target, error="Wrong password.")
            response.status_code = 401
            return response
        limiter.succeeded(address)
        token, _ = sessions.create()
        response = RedirectResponse(target, 303)
        response.set_cookie(SESSION_COOKIE, token, max_age=SESSION_S, httponly=True, samesite="strict",
                            secure=site.settings.tls is not None)
        return response

    def logout(request: Request) -> Response:
        sessions.end(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/login", 303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    # --- data -------------------------------------------------------------------------------------------
    def snapshot_as(render: Callable[[], str], media_type: str) -> Response:
        try:
            return Response(render(), media_type=media_type)
        except Exception as exc:  # a bad snapshot is a bug to report, not a reason to stop serving
            log.warning("status snapshot failed: %s", describe(exc))
            return PlainTextResponse(f"status snapshot failed: {describe(exc)}\n", 500)

    def status(request: Request) -> Response:
        return snapshot_as(lambda: json.dumps(site.snapshot(), default=str) + "\n", "application/json")

    def metrics(request: Request) -> Response:
        return snapshot_as(lambda: render_metrics(site.snapshot), METRICS_CONTENT_TYPE)

    def live(request: Request) -> Response:
        try:
            picture = site.live.picture(request.path_params["camera"])
        except KeyError:
            return PlainTextResponse("no such camera\n", 404)
        if picture is None:
            return PlainTextResponse("no frame yet\n", 503, headers={"Retry-After": "1"})
        return Response(picture.jpeg, media_type="image/jpeg")

    async def review(request: Request) -> Response:
        try:
            body = await request.json()
            ids, reviewed = body["ids"], body["reviewed"]
            if not (isinstance(ids, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
                    and isinstance(reviewed, bool) and len(ids) <= 1000):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            return PlainTextResponse('expected {"ids": [event ids], "reviewed": true|false}\n', 400)
        changed = await run_in_threadpool(site.store.set_reviewed, ids, reviewed)
        return JSONResponse({"changed": changed, "unreviewed": await run_in_threadpool(site.browser.unreviewed)})

    def evidence(request: Request) -> Response:
        """A snapshot or clip: only a path an event names, only inside the storage folder (no ``..``, no link
        out of it, no listing). Range requests, so a clip can be sought."""
        relpath = request.path_params["path"]
        root = site.storage.resolve()
        target = (root / relpath).resolve()
        if (".." in Path(relpath).parts or Path(relpath).is_absolute() or not target.is_relative_to(root)
                or not target.is_file() or not site.browser.names_file(relpath)):
            return PlainTextResponse("not found\n", 404)
        return FileResponse(target, headers={"Cache-Control": "private, max-age=3600"})

    routes = [
        Route("/", cameras), Route("/events", events), Route("/counts", counts),
        Route("/login", login_form, methods=["GET"]), Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/status", status), Route("/metrics", metrics),
        Route("/live/{camera}.jpg", live), Route("/api/review", review, methods=["POST"]),
        Route("/files/{path:path}", evidence),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(Guard, settings=site.settings, sessions=sessions,
                                                                limiter=limiter)])


def _totals_row(name: str, live: dict[str, int], day: dict[str, list[int]]) -> tuple[str, str, str]:
    """A zone's or line's counts since the monitor started and over the last day, as the table shows them."""
    if "now" in live:  # a zone
        return name, f"{live['entered']} in, {live['left']} out, {live['now']} now", f"{sum(day.get(name, []))} in"
    crossed = {d: sum(day.get(f"{name} {d}", [])) for d in ("in", "out")}
    return name, f"in {live['in']}, out {live['out']}", f"in {crossed['in']}, out {crossed['out']}"


def _choice(value: str | None, choices: tuple[str, ...]) -> str | None:
    if not value:
        return None
    if value not in choices:
        raise BadQuery(f"unknown event type {value!r} (one of: {', '.join(choices)})")
    return value


def _day(value: str | None) -> str | None:
    if not value:
        return None
    try:
        if not DAY.match(value):
            raise ValueError
        datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        raise BadQuery(f"day {value!r}: not a date (YYYY-MM-DD)") from None
    return value


def _int(value: str | None, default: int | None, low: int, high: int | None = None) -> int | None:
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise BadQuery(f"{value!r}: not a whole number") from None
    if number < low or (high is not None and number > high):
        raise BadQuery(f"{value!r}: out of range")
    return number


def _local_path(target: str | None) -> str:
    """Where to go after the login: a path on this site only (never ``//evil.example``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target

