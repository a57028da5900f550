"""`zfsync templates` through the real command against the simulated ZNS host: the approved templates
with their parameters, the day's quota; the list kept in the store and shown, with the error, when Zalo
cannot be reached; a fleet's tenant named with --tenant."""

from __future__ import annotations

import json

from tests.integration.test_daemon import write_config, zfsync
from tests.integration.test_fleet import desks as desks  # the fixture: two OAs, each with its simulators
from tests.integration.test_fleet import take_in, write_fleet


def with_templates(zalo) -> None:
    zalo.app.zns.add_template(
        {
            "template_id": "231001",
            "name": "Xác nhận đơn hàng",
            "params": [{"name": "order_id", "maxLength": 30}, {"name": "customer_name", "maxLength": 50}],
        },
        1,
    )
    zalo.app.zns.add_template({"template_id": "231002", "name": "Chờ duyệt", "status": "PENDING_REVIEW"}, 2)
    zalo.app.zns.used = 12


def test_templates_lists_the_approved_with_their_parameters_and_keeps_them(sims, tmp_path):
    zalo, fc = sims
    with_templates(zalo)
    config = write_config(tmp_path, zalo.url, fc.url)
    assert zfsync(config, "auth", "zalo", f"--refresh-token={zalo.app.mint_tokens()[1]}").returncode == 0
    listed = zfsync(config, "templates")
    assert listed.returncode == 0, listed.stderr
    out = listed.stdout
    assert "1 approved of 2" in out
    assert "231001  Xác nhận đơn hàng" in out
    assert "order_id: required, text, up to 30 characters" in out
    assert "231002  Chờ duyệt  (PENDING_REVIEW)" in out.split("Not approved")[1]
    assert "ZNS sends left today: 488 of 500" in out
    shown = json.loads(zfsync(config, "templates", "--json").stdout)
    assert [(t["template_id"], t["approved"]) for t in shown["templates"]] == [("231002", False), ("231001", True)]
    assert shown["quota"] == {"daily": 500, "remaining": 488} and shown["stale"] is False
    assert "zns        488 of 500 template sends left today" in zfsync(config, "status").stdout
    # Zalo unreachable: the list kept last, said to be so, and the error on one line.
    zalo.stop()
    kept = zfsync(config, "templates")
    assert kept.returncode == 1
    assert "as Zalo listed them last, at" in kept.stdout and "231001  Xác nhận đơn hàng" in kept.stdout
    assert kept.stderr.startswith("zfsync: Zalo's ZNS template list could not be read") and kept.stderr.count("\n") == 1


def test_templates_without_a_token_says_how_to_get_one(sims, tmp_path):
    zalo, fc = sims
    config = write_config(tmp_path, zalo.url, fc.url)
    refused = zfsync(config, "templates")
    assert refused.returncode == 1 and "zfsync auth zalo" in refused.stderr, refused.stderr


def test_a_fleets_tenant_lists_its_own_oas_templates(desks, tmp_path):
    fleet = write_fleet(tmp_path)
    take_in(fleet, tmp_path, desks)
    with_templates(desks["a"][0])
    assert zfsync(fleet, "templates").returncode == 2  # no --tenant on a fleet's config: said, not guessed
    a = zfsync(fleet, "templates", "--tenant", "a")
    assert a.returncode == 0 and "231001" in a.stdout, a.stderr
    b = zfsync(fleet, "templates", "--tenant", "b")
    assert b.returncode == 0 and "0 approved of 0" in b.stdout, b.stderr
