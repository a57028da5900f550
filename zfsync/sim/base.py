"""Plumbing shared by both simulators: a threaded HTTP server on loopback, a control API under ``/_sim/``,
fault injection and request counting.

Faults are queued per path prefix and consumed one request at a time, so a test can say "the next three
sends answer -213" or "the next message list is HTML" and know exactly which requests were hit.
"""

from __future__ import annotations

import email.policy
import json
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Json = dict[str, Any]

FAULT_KINDS = ("zalo_error", "status", "html", "latency", "reset", "malformed", "timeout", "drip", "endless")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"{}")

    def files(self) -> dict[str, Upload]:
        """The file fields of a multipart/form-data body, by field name."""
        content_type = self.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            return {}
        parsed = BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + self.body
        )
        found: dict[str, Upload] = {}
        for part in parsed.iter_parts():
            field_name = part.get_param("name", header="content-disposition")
            if field_name:
                payload = part.get_payload(decode=True)
                data = payload if isinstance(payload, bytes) else b""
                found[str(field_name)] = Upload(part.get_filename() or "", part.get_content_type(), data)
        return found

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


@dataclass
class Upload:
    name: str
    content_type: str
    data: bytes


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str = "application/json"
    drip: float = 0.0  # seconds between bytes of the body (over sockets only): a server that trickles
    endless: bool = False  # the body never ends (over sockets only)


@dataclass
class Fault:
    """One injected misbehaviour for requests whose path starts with ``path``."""

    path: str
    kind: str
    count: int = 1
    code: int = 0  # zalo_error: the error code; status: the HTTP status
    seconds: float = 0.0  # latency / timeout: how long to wait; status 429: the Retry-After value
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)  # status: sent with the answer


class ConnectionDropped(Exception):
    """The fault is at the connection level: the server resets it, or never answers."""

    def __init__(self, kind: str, seconds: float):
        super().__init__(kind)
        self.kind = kind
        self.seconds = seconds


def fault_response(fault: Fault) -> Response:
    if fault.kind == "html":
        return Response(200, raw=b"<!DOCTYPE html><html><body>Sign in</body></html>", content_type="text/html")
    if fault.kind == "malformed":
        return Response(200, raw=b'{"data": [{"message_id": "tru')
    if fault.kind == "zalo_error":
        return Response(200, {"error": fault.code, "message": fault.message or "Simulated error"})
    headers = {"Retry-After": str(int(fault.seconds))} if fault.code == 429 and fault.seconds else {}
    headers.update(fault.headers)
    return Response(fault.code or 500, fault_body(fault), headers)


def fault_body(fault: Fault) -> Json:
    """The body of an injected HTTP error (``status``)."""
    return {"code": fault.code, "status": "SIMULATED", "message": fault.message or "simulated failure"}


class MinuteQuota:
    """A per-minute request limit as both APIs describe theirs: the count resets at each minute of the
    simulator's clock. ``per_minute`` 0 is no limit."""

    def __init__(self) -> None:
        self.minute = -1
        self.count = 0
        self.refused = 0  # requests refused for the rate, ever

    def take(self, now: float, per_minute: int) -> tuple[bool, int, float]:
        """Count one request; returns (allowed, remaining after it, the Unix time the window resets)."""
        minute = int(now // 60)
        if minute != self.minute:
            self.minute, self.count = minute, 0
        self.count += 1
        allowed = self.count <= per_minute
        if not allowed:
            self.refused += 1
        return allowed, max(0, per_minute - self.count), (minute + 1) * 60.0


class SimApp:
    """Routes and state of one simulated API. Subclasses implement `handle` and `control`."""

    name = "sim"

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.faults: list[Fault] = []
        self.requests: dict[str, int] = {}
        self.rtt = 0.0  # added to every API request, to model a real network
        self.clock_offset = 0.0
        self.clock: Callable[[], float] = time.time  # tests may share their fake clock
        self.base_url = ""  # set by SimServer, so media links are absolute like the real CDNs'
        self.media: dict[str, Upload] = {}
        self.media_drip: dict[str, float] = {}  # media id -> seconds between the bytes it is served with

    def add_media(self, data: bytes, content_type: str, name: str, drip: float = 0.0) -> str:
        """Keep a file and return the absolute URL that serves it; ``drip``: served a byte every so many
        seconds (headers at once), as from a congested CDN (over sockets only)."""
        with self.lock:
            media_id = f"m{len(self.media) + 1}"
            self.media[media_id] = Upload(name, content_type, data)
            if drip:
                self.media_drip[media_id] = drip
        return f"{self.base_url}/media/{media_id}/{name}"

    def set_media_drip(self, url: str, drip: float) -> None:
        """Serve the media at ``url`` a byte every ``drip`` seconds from now on (0: at once)."""
        media_id = url.split("/media/", 1)[1].split("/")[0]
        with self.lock:
            self.media_drip[media_id] = drip

    def serve_media(self, path: str) -> Response:
        media_id = path.split("/")[2] if path.count("/") >= 2 else ""
        found = self.media.get(media_id)
        if found is None:
            return Response(404, {"error": "no such media"})
        return Response(200, raw=found.data, content_type=found.content_type, drip=self.media_drip.get(media_id, 0.0))

    def now(self) -> float:
        return self.clock() + self.clock_offset

    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    def serve(self, request: Request, wait: bool = True) -> Response:
        """One API request: counted, delayed by the round-trip time, possibly faulted, then handled.
        ``wait=False`` skips every sleep (for the in-process transport under a fake clock)."""
        with self.lock:
            self.requests[request.path] = self.requests.get(request.path, 0) + 1
        if self.rtt and wait:
            time.sleep(self.rtt)
        fault = self._take_fault(request.path)
        if fault is not None:
            if fault.kind in ("reset", "timeout"):
                raise ConnectionDropped(fault.kind, fault.seconds or 60)
            if fault.kind == "latency":
                if wait:
                    time.sleep(fault.seconds)
            elif fault.kind in ("drip", "endless"):
                response = self.handle(request)
                response.drip = fault.seconds if fault.kind == "drip" else 0.0
                response.endless = fault.kind == "endless"
                return response
            else:
                return fault_response(fault)
        try:
            return self.handle(request)
        except Exception as exc:  # a simulator bug must show as a 500, like a real server's
            return Response(500, {"code": 500, "status": "INTERNAL", "message": f"sim error: {exc!r}"})

    def control(self, request: Request, action: str) -> Response:
        raise NotImplementedError

    def _take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if path.startswith(fault.path) and fault.count > 0:
                    fault.count -= 1
                    if fault.count == 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def base_control(self, request: Request, action: str) -> Response | None:
        if action == "faults" and request.method == "POST":
            spec = request.json()
            if spec.get("kind") not in FAULT_KINDS:
                return Response(400, {"error": f"kind must be one of {FAULT_KINDS}"})
            with self.lock:
                self.faults.append(Fault(**{k: v for k, v in spec.items() if k in Fault.__dataclass_fields__}))
            return Response(200, {"ok": True})
        if action == "faults" and request.method == "DELETE":
            with self.lock:
                self.faults.clear()
            return Response(200, {"ok": True})
        if action == "stats":
            with self.lock:
                return Response(200, {"requests": dict(self.requests)})
        if action == "rtt":
            self.rtt = float(request.json().get("seconds", 0))
            return Response(200, {"ok": True})
        if action == "media" and request.method == "POST":
            name = request.query.get("name", "file.bin")
            content_type = request.query.get("content_type", "application/octet-stream")
            url = self.add_media(request.body, content_type, name, float(request.query.get("drip", 0)))
            return Response(200, {"url": url})
        if action == "media_drip" and request.method == "POST":
            body = request.json()
            self.set_media_drip(str(body["url"]), float(body.get("drip", 0)))
            return Response(200, {"ok": True})
        if action == "clock":
            with self.lock:
                self.clock_offset += float(request.json().get("advance", 0))
            return Response(200, {"now": self.now()})
        return None


class _Handler(BaseHTTPRequestHandler):
    server: SimServer
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes; with Nagle on, each response waits for a delayed ACK (~40 ms).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the simulators are quiet; tests read state through the control API

    def _dispatch(self) -> None:
        app = self.server.app
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            self.command,
            split.path,
            {k: v[0] for k, v in parse_qs(split.query).items()},
            {k.lower(): v for k, v in self.headers.items()},
            body,
        )
        if split.path.startswith("/_sim/"):
            response = app.base_control(request, split.path[len("/_sim/") :]) or app.control(
                request, split.path[len("/_sim/") :]
            )
            self._send(response)
            return
        try:
            response = app.serve(request)
        except ConnectionDropped as drop:
            self._drop(drop)
            return
        self._send(response)

    def _drop(self, drop: ConnectionDropped) -> None:
        self.close_connection = True
        if drop.kind == "timeout":
            time.sleep(drop.seconds)
            return
        try:  # a reset: close with RST instead of FIN
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send(self, response: Response) -> None:
        raw = response.raw if response.raw is not None else json.dumps(response.body).encode()
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        if response.endless:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(raw)))
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.end_headers()
        try:
            if response.endless:
                self._send_endless()
            elif response.drip:
                for i in range(len(raw)):
                    self.wfile.write(raw[i : i + 1])
                    self.wfile.flush()
                    time.sleep(response.drip)
            else:
                self.wfile.write(raw)
        except OSError:
            self.close_connection = True  # the client gave up on us, as it should

    def _send_endless(self) -> None:
        """A JSON array that never closes, in 64 kB chunks, until the client hangs up."""
        self.close_connection = True
        self.wfile.write(b"1\r\n[\r\n")
        chunk = b"0," * 32768
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        deadline = time.monotonic() + 120  # a bound of its own, should the client never hang up
        while time.monotonic() < deadline:
            self.wfile.write(frame)

    do_GET = do_POST = do_PUT = do_DELETE = _dispatch


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, app: SimApp, host: str = "127.0.0.1", port: int = 0):
        self.app = app
        super().__init__((host, port), _Handler)
        app.base_url = self.url
        self._thread: threading.Thread | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that vanished mid-request (a killed daemon) is expected here, not a simulator bug.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{port}"

    def start(self) -> SimServer:
        self._thread = threading.Thread(
            target=self.serve_forever, args=(0.05,), name=f"sim-{self.app.name}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
