"""The simulated Zalo Notification Service of one OA: its templates and its day's ZNS quota.

Shapes from tests/contract/recorded/zns/ (README there names each source). Where the docs disagree, the
`Modes` of `zfsync.sim.zalo` pick the answer: ``zns_keys`` "doc" (the list's example: ``templateId`` a
number, ``templateName``) or "field_table" (``template_id`` a string, ``template_name``);
``zns_numbers`` True (the quota's example: numbers) or False (its field table: strings). An unknown or
expired token answers -124, ZNS's own code.

Control (through `ZaloSim.control`): ``zns_template`` (POST a template: ``template_id``, ``name``,
``status``, ``params`` as ``[{"name", "require", "type", "maxLength"}]``), ``zns_quota`` (POST
``{"daily", "used"}``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zfsync.sim.base import Json, Request, Response

PATHS = frozenset({"/template/all", "/template/info/v2", "/message/quota", "/message/template", "/rating/get"})
STATUS_FILTER = {"1": "ENABLE", "2": "PENDING_REVIEW", "3": "REJECT", "4": "DISABLE"}


def zns_error(code: int, message: str) -> Response:
    return Response(200, {"error": code, "message": message})


def _ok(data: Any, **more: Any) -> Response:
    return Response(200, {"error": 0, "message": "Success", "data": data, **more})


@dataclass
class ZnsState:
    templates: list[Json] = field(default_factory=list)  # oldest first
    daily: int = 500
    used: int = 0
    sent: list[Json] = field(default_factory=list)  # the template messages sent, in order
    ratings: list[Json] = field(default_factory=list)  # customers' answers to rating templates

    def add_template(self, body: Json, created_ms: int) -> Json:
        template = {
            "template_id": str(body.get("template_id") or 900_000 + len(self.templates) + 1),
            "name": str(body.get("name", "Mẫu tin")),
            "status": str(body.get("status", "ENABLE")),
            "quality": str(body.get("quality", "HIGH")),
            "tag": str(body.get("tag", "TRANSACTION")),
            "price": str(body.get("price", "300.0")),
            "created": created_ms,
            "params": [
                {
                    "name": str(p["name"]),
                    "require": bool(p.get("require", True)),
                    "type": str(p.get("type", "STRING")),
                    "maxLength": int(p.get("maxLength", 30)),
                    "minLength": int(p.get("minLength", 0)),
                    "acceptNull": bool(p.get("acceptNull", False)),
                }
                for p in body.get("params", [])
            ],
        }
        self.templates.append(template)
        return template

    def rate(self, body: Json, now_ms: int) -> Json:
        """A customer answers the rating template sent as ``tracking_id`` (control ``zns_rating``)."""
        sent = next((s for s in self.sent if s["tracking_id"] == str(body.get("tracking_id"))), None)
        rating = {
            "template_id": sent["template_id"] if sent else str(body.get("template_id", "")),
            "note": str(body.get("note", "")),
            "rate": int(body.get("rate", 5)),
            "submitDate": str(int(body.get("submit_ms", now_ms))),
            "msgId": f"r{len(self.ratings) + 1:019d}",
            "feedbacks": [str(f) for f in body.get("feedbacks", [])],
            "trackingId": str(body.get("tracking_id", "")),
        }
        self.ratings.append(rating)
        return rating

    def handle(
        self,
        request: Request,
        keys: str,
        numbers: bool,
        phones: set[str],
        now_ms: int,
        rating: tuple[str, str] = ("GET", "feedbacks"),
    ) -> Response:
        if request.path == "/rating/get":
            return self._ratings(request, *rating)
        if request.path == "/message/template":
            return (
                self._send(request, phones, now_ms)
                if request.method == "POST"
                else zns_error(-106, "Method unsupported")
            )
        if request.path == "/template/all":
            return self._list(request, keys)
        if request.path == "/template/info/v2":
            return self._info(request)
        return self._quota(numbers)

    def _list(self, request: Request, keys: str) -> Response:
        try:
            offset, limit = int(request.query["offset"]), int(request.query["limit"])
        except (KeyError, ValueError):
            return zns_error(-132, "Parameter invalid")
        if offset < 0 or not 1 <= limit <= 100:
            return zns_error(-132, "Parameter invalid")
        wanted = STATUS_FILTER.get(request.query.get("status", ""))
        chosen = [t for t in reversed(self.templates) if wanted is None or t["status"] == wanted]
        rows = []
        for t in chosen[offset : offset + limit]:
            if keys == "field_table":
                row: Json = {"template_id": t["template_id"], "template_name": t["name"]}
            else:
                number = int(t["template_id"]) if t["template_id"].isdigit() else t["template_id"]
                row = {"templateId": number, "templateName": t["name"]}
            row.update({"createdTime": t["created"], "status": t["status"], "templateQuality": t["quality"]})
            rows.append(row)
        return _ok(rows, metadata={"total": len(chosen)})

    def _send(self, request: Request, phones: set[str], now_ms: int) -> Response:
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return zns_error(-122, "Body format invalid")
        data = body.get("template_data")
        found = next((t for t in self.templates if t["template_id"] == str(body.get("template_id"))), None)
        if found is None:
            return zns_error(-109, "Template ID invalid")
        if found["status"] != "ENABLE":
            return zns_error(-131, "ZNS template not approved")
        if not isinstance(data, dict) or not data:
            return zns_error(-111, "Template data empty")
        for param in found["params"]:
            value = data.get(param["name"])
            if (value is None or value == "") and param["require"] and not param["acceptNull"]:
                return zns_error(-1122, f"template data is missing a parameter {param['name']}")
            if value is not None and len(str(value)) > param["maxLength"]:
                return zns_error(-1121, f"{param['name']} data breaks max length")
        phone = phone_84(str(body.get("phone", "")))
        if phone is None:
            return zns_error(-108, "Phone number invalid")
        if phone not in phones:
            return zns_error(-118, "Zalo account not existed")
        if self.used >= self.daily:
            return zns_error(-144, "ZNS daily quota exceeded")
        self.used += 1
        msg_id = f"zns{len(self.sent) + 1:017d}"
        self.sent.append(
            {
                "msg_id": msg_id,
                "phone": phone,
                "template_id": found["template_id"],
                "template_data": dict(data),
                "tracking_id": str(body.get("tracking_id", "")),
                "time": now_ms,
            }
        )
        quota = {"dailyQuota": str(self.daily), "remainingQuota": str(self.daily - self.used)}
        return _ok({"msg_id": msg_id, "sent_time": str(now_ms), "sending_mode": "1", "quota": quota})

    def _ratings(self, request: Request, method: str, feedback_key: str) -> Response:
        if request.method != method:
            return zns_error(-106, "Method unsupported")
        given = request.query if method == "GET" else (request.json() or {})
        try:
            template_id = str(given["template_id"])
            since, until = int(given["from_time"]), int(given["to_time"])
            offset, limit = int(given["offset"]), int(given["limit"])
        except (KeyError, TypeError, ValueError):
            return zns_error(-132, "Parameter invalid")
        chosen = [r for r in self.ratings if r["template_id"] == template_id and since <= int(r["submitDate"]) <= until]
        rows = []
        for r in chosen[offset : offset + limit]:
            row = {k: v for k, v in r.items() if k != "template_id"}
            row[feedback_key] = row.pop("feedbacks")
            rows.append(row)
        return Response(200, {"data": {"total": len(chosen), "data": rows}, "error": 0, "message": "Success"})

    def _info(self, request: Request) -> Response:
        found = next((t for t in self.templates if t["template_id"] == request.query.get("template_id")), None)
        if found is None:
            return zns_error(-109, "Template ID invalid")
        return _ok(
            {
                "templateId": found["template_id"],
                "templateName": found["name"],
                "status": found["status"],
                "listParams": [dict(p) for p in found["params"]],
                "listButtons": [],
                "timeout": 7200000,
                "previewUrl": f"https://account.zalo.cloud/znspreview/{found['template_id']}",
                "templateQuality": found["quality"],
                "templateTag": found["tag"],
                "price": found["price"],
            }
        )

    def _quota(self, numbers: bool) -> Response:
        daily, remaining = self.daily, max(0, self.daily - self.used)
        data: Json = {
            "dailyQuota": daily if numbers else str(daily),
            "remainingQuota": remaining if numbers else str(remaining),
            "dailyQuotaPromotion": None,
            "remainingQuotaPromotion": None,
            "monthlyPromotionQuota": 125,
            "remainingMonthlyPromotionQuota": 124,
            "estimatedNextMonthPromotionQuota": 2000,
        }
        return Response(200, {"data": data, "error": 0, "message": "success"})


def phone_84(raw: str) -> str | None:
    """A Vietnamese phone number in the 84 form ZNS documents (84..., +84... or 0...), None if it is none."""
    digits = raw.strip().removeprefix("+")
    if digits.startswith("0"):
        digits = "84" + digits[1:]
    return digits if digits.isdigit() and digits.startswith("84") and 10 <= len(digits) <= 12 else None


def shared_phones(users: Json) -> set[str]:
    """The phones, in the 84 form, that users (in the simulators' words) shared with the OA."""
    return {
        phone
        for user in users.values()
        if (phone := phone_84(str((user.get("shared_info") or {}).get("phone") or ""))) is not None
    }
