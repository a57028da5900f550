"""structlog set-up: coloured console on a terminal, syslog-prefixed lines under journald, JSON otherwise.

Under journald (``$JOURNAL_STREAM`` set) each line starts with ``<N>``, its syslog priority, so
``journalctl -u zfsync -p warning`` shows only problems. Two last lines of defence keep
secrets out of the journal at every level: a value whose key looks like a secret is masked, and so is any
known secret (`remember_secret`: the tokens, the API key, the app secret) wherever it appears in a line,
a library's debug record of its SQL and a traceback included.

Every other line the process writes goes the same way: the records of the libraries' own loggers
(APScheduler, urllib3, Python's warnings) become ``library_log`` events, and an exception nobody caught (in
any thread) a ``thread_crashed`` or ``process_crashed`` event with its traceback. Libraries speak from
warning up (their info lines narrate every job run), or from debug when ``log.level = "debug"``.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TextIO

import structlog

PRIORITY = {"debug": 7, "info": 6, "warning": 4, "warn": 4, "error": 3, "critical": 2, "exception": 3}
SECRET_HINTS = ("token", "secret", "api_key", "apikey", "password", "authorization", "verifier")


SECRET_MIN_LENGTH = 8  # shorter values would mask ordinary words; no key or token is this short
KEEP_SECRETS = 64  # tokens rotate daily: the newest few dozen values are enough
_known: OrderedDict[str, None] = OrderedDict()
_known_lock = threading.Lock()
_longest_first: tuple[str, ...] = ()  # `_known`, longest first: what every line is searched for


def remember_secret(*values: str | None) -> None:
    """Values the process holds that must never be written (tokens, keys, the app secret): any line that
    contains one, whoever wrote it (a library's debug record of its SQL, a traceback), has it masked."""
    global _longest_first
    with _known_lock:
        for value in values:
            if value and len(value) >= SECRET_MIN_LENGTH:
                _known[value] = None
                _known.move_to_end(value)
        while len(_known) > KEEP_SECRETS:
            _known.popitem(last=False)
        _longest_first = tuple(sorted(_known, key=len, reverse=True))  # sorted here, not at every line


def redact(text: str) -> str:
    """``text`` with every secret `remember_secret` was given replaced by ``***``."""
    for value in _longest_first:  # a tuple replaced whole: read without the lock
        if value in text:
            text = text.replace(value, "***")
    return text


class _Redacting:
    """The renderer's line, with any known secret masked: by value, so that no key name, library or
    exception text can carry one past it."""

    def __init__(self, renderer: Callable[[Any, str, dict[str, Any]], Any]):
        self.renderer = renderer

    def __call__(self, logger: Any, method: str, event: dict[str, Any]) -> Any:
        line = self.renderer(logger, method, event)
        return redact(line) if isinstance(line, str) else line


def mask_secrets(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for key in list(event):
        if any(hint in key.lower() for hint in SECRET_HINTS):
            event[key] = "***"
    return event


def _journald_prefix(_: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    event["_priority"] = PRIORITY.get(method, 6)
    return event


class _JournaldRenderer:
    """One ``<priority>key=value`` line, then the traceback (if any), each of its lines with the same
    priority prefix: journald makes every line its own entry, so an unprefixed traceback line would drop
    to "info" and out of ``journalctl -p warning``, the place where it matters most."""

    def __init__(self) -> None:
        self._inner = structlog.processors.KeyValueRenderer(key_order=["event"], drop_missing=True)

    def __call__(self, logger: Any, method: str, event: dict[str, Any]) -> str:
        priority = event.pop("_priority", 6)
        event.pop("timestamp", None)  # journald stamps every line itself
        trace = str(event.pop("exception", "") or "")
        lines = [f"<{priority}>{self._inner(logger, method, event)}"]
        lines += [f"<{priority}>  {line}" for line in trace.splitlines()]
        return "\n".join(lines)


class Throttle:
    """A warning about the same item is said once, then counted: `first` is true for a key's first
    occurrence and again once per ``window`` seconds after it, and `repeats` says how often it recurred
    unsaid in between. At most ``keep`` keys are remembered (the least recently seen are forgotten)."""

    def __init__(self, window: float = 3600.0, keep: int = 1024, clock: Callable[[], float] = time.monotonic):
        self.window = window
        self.keep = keep
        self.clock = clock
        self._said: OrderedDict[Hashable, tuple[float, int]] = OrderedDict()  # key -> (said at, unsaid since)
        self._lock = threading.Lock()

    def first(self, key: Hashable) -> bool:
        now = self.clock()
        with self._lock:
            said = self._said.get(key)
            if said is not None and now - said[0] < self.window:
                self._said[key] = (said[0], said[1] + 1)
                self._said.move_to_end(key)
                return False
            self._said[key] = (now, 0)
            self._said.move_to_end(key)
            while len(self._said) > self.keep:
                self._said.popitem(last=False)
            return True

    def repeats(self, key: Hashable) -> int:
        """How often ``key`` came again since it was last said (call before `first` to report it)."""
        with self._lock:
            said = self._said.get(key)
            return said[1] if said else 0


# Messages libraries log as warnings that are no fault of anyone's: said at debug.
ROUTINE = ("maximum number of running instances reached",)
LEVEL_NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warning", logging.ERROR: "error"}


class _ToStructlog(logging.Handler):
    """Hands each record of the stdlib `logging` tree to structlog, as a ``library_log`` event."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            level = record.levelno
            if level == logging.WARNING and any(text in message for text in ROUTINE):
                level = logging.DEBUG
            name = LEVEL_NAMES.get(level, "critical" if level > logging.ERROR else "debug")
            fields: dict[str, Any] = {"logger": record.name, "message": message}
            if record.exc_info:
                fields["exc_info"] = record.exc_info
            getattr(structlog.get_logger(record.name), name)("library_log", **fields)
        except Exception:  # a log line must never take the process down
            self.handleError(record)


def _route_everything_else(level: str) -> None:
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _ToStructlog)]:
        root.removeHandler(handler)  # set up again (tests do): one bridge, not two
    root.addHandler(_ToStructlog())
    root.setLevel(logging.DEBUG if level == "debug" else max(logging.WARNING, getattr(logging, level.upper())))
    logging.captureWarnings(True)
    crash_log = structlog.get_logger("zfsync")

    def thread_crashed(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        exc_info = (args.exc_type, args.exc_value, args.exc_traceback)
        thread = args.thread.name if args.thread else "unknown"
        crash_log.error("thread_crashed", thread=thread, exc_info=exc_info)

    def process_crashed(exc_type: Any, exc_value: Any, exc_traceback: Any) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc_value, exc_traceback)
            return
        crash_log.error("process_crashed", exc_info=(exc_type, exc_value, exc_traceback))

    threading.excepthook = thread_crashed
    sys.excepthook = process_crashed


def pick_format(requested: str, stream: TextIO) -> str:
    if requested != "auto":
        return requested
    if os.environ.get("JOURNAL_STREAM"):
        return "journald"
    return "console" if stream.isatty() else "json"


def setup(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> str:
    stream = stream or sys.stdout
    chosen = pick_format(fmt, stream)
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        mask_secrets,
    ]
    if chosen == "journald":
        processors += [_journald_prefix, structlog.processors.format_exc_info, _Redacting(_JournaldRenderer())]
    elif chosen == "json":
        renderer = structlog.processors.JSONRenderer(ensure_ascii=False)
        processors += [structlog.processors.format_exc_info, _Redacting(renderer)]
    else:
        processors += [_Redacting(structlog.dev.ConsoleRenderer(colors=stream.isatty()))]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    _route_everything_else(level)
    return chosen
