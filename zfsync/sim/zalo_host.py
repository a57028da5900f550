"""One simulated Zalo API host serving many OAs, as openapi.zalo.me and oauth.zaloapp.com do.

An integrator registers one Zalo app and connects many OAs to it. Zalo's rate limit is per app
(recorded/zalo/rate_limit_headers_doc.json: 4,000 requests a minute per app, each answer carrying
``X-RateLimit-Limit`` and ``X-RateLimit-Remain``), so every OA of an app draws on one count here: one
OA's burst lowers what every other OA of that app is told remains, and past the limit each of them is
refused with -32 until the minute ends. Each OA is a whole `ZaloSim` (its users, feed, sends, tokens,
modes); the host finds it by the access token a request carries, or for the token endpoint by the refresh
token or authorisation code.

Control API (``/_sim/...``): ``oa`` (POST ``{"name", "app_id", "app_secret", "oa_id"}``: an OA joins,
answered with its ``oa_id`` and a refresh token to import), ``oa/<name>/<action>`` (that OA's own control
API: ``customer_message``, ``sent``, ``modes``...), ``apps`` (GET: each app's limit, requests this minute
and refusals; POST ``{"app_id", "per_minute"}``: set an app's limit), plus the shared ``faults``, ``stats``,
``rtt`` and ``clock``, which act on the host as a whole.
"""

from __future__ import annotations

import hashlib

from zfsync.sim import zns
from zfsync.sim.base import MinuteQuota, Request, Response, SimApp
from zfsync.sim.zalo import ZaloSim, zalo_error

DOCUMENTED_PER_APP = 4000


class ZaloHost(SimApp):
    name = "zalo"

    def __init__(self, per_app_minute: int = DOCUMENTED_PER_APP):
        super().__init__()
        self.per_app_minute = per_app_minute  # each app's limit unless `limits` names it; 0: none
        self.limits: dict[str, int] = {}
        self.quotas: dict[str, MinuteQuota] = {}
        self.oas: dict[str, ZaloSim] = {}

    @property
    def base_url(self) -> str:
        return self._base_url

    @base_url.setter
    def base_url(self, url: str) -> None:
        # Each OA's media links lie under the host's address (SimServer sets it once it has a port).
        self._base_url = url
        for name, oa in getattr(self, "oas", {}).items():
            oa.base_url = f"{url}/oa/{name}"

    def add_oa(self, name: str, app_id: str = "sim-app", app_secret: str = "sim-secret", oa_id: str = "") -> ZaloSim:
        """A new OA connected to ``app_id``, sharing this host's clock, lock and the app's count."""
        oa = ZaloSim(app_id=app_id, app_secret=app_secret, oa_id=oa_id or _oa_id_of(name))
        oa.lock = self.lock
        oa.clock = self.now
        oa.base_url = f"{self.base_url}/oa/{name}"
        with self.lock:
            if name in self.oas:
                raise ValueError(f"an OA named {name} is already on this host")
            self.oas[name] = oa
            self.quotas.setdefault(app_id, MinuteQuota())
        return oa

    def limit_of(self, app_id: str) -> int:
        return self.limits.get(app_id, self.per_app_minute)

    def requests_this_minute(self, app_id: str) -> int:
        with self.lock:
            quota = self.quotas.get(app_id)
            return quota.count if quota is not None and quota.minute == int(self.now() // 60) else 0

    def refused(self, app_id: str) -> int:
        with self.lock:
            quota = self.quotas.get(app_id)
            return quota.refused if quota is not None else 0

    # --- the API -------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        if request.path.startswith("/oa/") and "/media/" in request.path:
            name, _, rest = request.path[len("/oa/") :].partition("/")
            oa = self.oas.get(name)
            return oa.serve_media("/" + rest) if oa is not None else Response(404, {"error": "no such media"})
        if request.path == "/v4/oa/access_token" and request.method == "POST":
            return self._token(request)
        if request.path == "/v4/oa/permission":
            owner = self._first_of(request.query.get("app_id", ""))
            return owner.handle(request) if owner else Response(400, {"error": -14002, "message": "Invalid app"})
        token = request.headers.get("access_token", "")
        with self.lock:
            owner = next((oa for oa in self.oas.values() if token in oa.access_tokens), None)
        if request.path in zns.PATHS:  # the ZNS host: its own count, its own code for a bad token
            return owner.handle(request) if owner is not None else zns.zns_error(-124, "Access token invalid")
        if owner is None:
            return zalo_error(-216, "Access token is invalid")
        failure = owner._authorise(request)
        if failure:
            return failure
        return owner.answer(request, self.quotas[owner.app_id], self.limit_of(owner.app_id))

    def _token(self, request: Request) -> Response:
        form = request.form()
        refresh, code = form.get("refresh_token", ""), form.get("code", "")
        with self.lock:
            owner = next(
                (oa for oa in self.oas.values() if refresh in oa.refresh_tokens or code in oa.codes),
                None,
            ) or self._first_of(form.get("app_id", ""))
        if owner is None:
            return Response(200, {"error": -14002, "error_name": "invalid_app", "message": "Invalid app or secret"})
        return owner._token(request)  # which checks the app's id and secret, and the grant, as for one OA

    def _first_of(self, app_id: str) -> ZaloSim | None:
        with self.lock:
            return next((oa for oa in self.oas.values() if oa.app_id == app_id), None)

    # --- control -------------------------------------------------------------------------------------

    def control(self, request: Request, action: str) -> Response:
        body = request.json() if request.method in ("POST", "PUT") else {}
        if action == "oa" and request.method == "POST":
            try:
                oa = self.add_oa(
                    str(body["name"]),
                    str(body.get("app_id", "sim-app")),
                    str(body.get("app_secret", "sim-secret")),
                    str(body.get("oa_id", "")),
                )
            except (KeyError, ValueError) as exc:
                return Response(400, {"error": f"cannot add the OA: {exc}"})
            return Response(200, {"oa_id": oa.oa_id, "refresh_token": oa.mint_tokens()[1]})
        if action.startswith("oa/"):
            name, _, rest = action[len("oa/") :].partition("/")
            named = self.oas.get(name)
            if named is None:
                return Response(404, {"error": f"no OA named {name} on this host"})
            return named.base_control(request, rest) or named.control(request, rest)
        if action == "apps" and request.method == "POST":
            with self.lock:
                self.limits[str(body["app_id"])] = int(body.get("per_minute", 0))
        if action == "apps":
            with self.lock:
                apps = sorted({oa.app_id for oa in self.oas.values()} | set(self.limits))
            return Response(
                200,
                {
                    app: {
                        "per_minute": self.limit_of(app),
                        "this_minute": self.requests_this_minute(app),
                        "refused": self.refused(app),
                    }
                    for app in apps
                },
            )
        return Response(404, {"error": f"unknown control action {action}: an OA's own are under oa/<name>/"})


def _oa_id_of(name: str) -> str:
    """A stable OA id for ``name``, shaped as Zalo's are (a 19-digit number as text)."""
    return str(10**18 + int(hashlib.sha1(name.encode()).hexdigest()[:15], 16) % (9 * 10**18))
