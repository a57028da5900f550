"""The simulators without sockets: a `requests` transport adapter that hands each request straight to a
`SimApp`. The real clients run unchanged on top of it, so tests and benchmarks that need thousands of
cycles under a fake clock exercise the same code as the daemon, minus only the TCP stack.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from zfsync.sim.base import ConnectionDropped, Request, SimApp


class InProcessAdapter(BaseAdapter):
    def __init__(self, app: SimApp):
        super().__init__()
        self.app = app

    def send(self, request: requests.PreparedRequest, stream: bool = False, **kwargs: object) -> requests.Response:  # type: ignore[override]
        split = urlsplit(request.url or "")
        body = request.body or b""
        sim_request = Request(
            request.method or "GET",
            split.path,
            {k: v[0] for k, v in parse_qs(split.query).items()},
            {k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()},
            body.encode() if isinstance(body, str) else body if isinstance(body, bytes) else b"",
        )
        try:
            served = self.app.serve(sim_request, wait=False)
        except ConnectionDropped as drop:
            if drop.kind == "timeout":
                raise requests.ReadTimeout("simulated timeout", request=request) from None
            raise requests.ConnectionError("simulated connection reset", request=request) from None
        response = requests.Response()
        response.status_code = served.status
        response._content = served.raw if served.raw is not None else json.dumps(served.body).encode()
        response.headers = CaseInsensitiveDict(
            {"Content-Type": served.content_type, "Content-Length": str(len(response._content)), **served.headers}
        )
        response.url = request.url or ""
        response.request = request
        response.encoding = "utf-8"
        response._content_consumed = True  # a streamed read is served from the content already here
        return response

    def close(self) -> None:
        pass


def session_for(app: SimApp, base_url: str) -> requests.Session:
    """A session whose requests to ``base_url`` are served by ``app`` in this process."""
    from zfsync.sides import http

    session = http.new_session()
    app.base_url = base_url
    session.mount(base_url, InProcessAdapter(app))
    return session
