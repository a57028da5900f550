from __future__ import annotations

import re

import pytest

from zfsync import config
from zfsync.domain.errors import ConfigError

SECRETS = {"ZFSYNC_ZALO_APP_SECRET": "zalo-secret-42", "ZFSYNC_FRESHCHAT_API_KEY": "fc-key-42"}
MINIMAL = {"zalo": {"app_id": "1"}, "freshchat": {"api_url": "https://api.freshchat.com/v2", "channel_id": "c"}}


def test_minimal_config_gets_documented_defaults():
    settings = config.from_mapping(MINIMAL, SECRETS)
    assert settings.zalo.api_url == "https://openapi.zalo.me"
    assert settings.freshchat.api_url == "https://api.freshchat.com"  # the trailing /v2 is accepted
    assert settings.sync.display_name == "{name} Zalo"
    assert "secret-42" not in repr(settings) and "key-42" not in repr(settings)  # secrets stay out of reprs


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"zalo": {}}, "zalo.app_id is missing"),
        ({"zalo": {"app_id": "1", "poll_interval": "fast"}}, "zalo.poll_interval: expected a number of seconds"),
        ({"zalo": {"app_id": "1", "api_url": "openapi.zalo.me"}}, "zalo.api_url: expected an http(s) URL"),
        ({"zalo": {"app_id": "1", "typo": 1}}, "zalo.typo is unknown"),
        ({"zalo": {"app_id": "1", "app_secret": "x"}}, "set ZFSYNC_ZALO_APP_SECRET"),
        ({"sync": {"long_text": "zip"}}, "sync.long_text: expected one of"),
        ({"sync": {"display_name": "{nme}"}}, "sync.display_name: expected a template"),
        ({"sync": {"command_prefix": "/zalo do"}}, "sync.command_prefix: expected one word"),
        ({"sync": {"window_warning_hours": 200}}, "sync.window_warning_hours: expected hours from 0"),
        ({"sync": {"window_warning_hours": True}}, "sync.window_warning_hours: expected hours from 0"),
        ({"sync": {"resolve_notice_when": "never"}}, "sync.resolve_notice_when: expected one of"),
        ({"sync": {"share_contact_details": "yes"}}, "sync.share_contact_details: expected true or false"),
        ({"sync": {"info_card_title": "x" * 101}}, "sync.info_card_title: Zalo shows at most 100 characters"),
        ({"sync": {"info_card_image": "oa.png"}}, "sync.info_card_image: expected an http(s) URL"),
        ({"sync": {"agent_signature": "— {agent.__class__}"}}, "sync.agent_signature: expected one line"),
        ({"sync": {"agent_signature": "— {name}"}}, "sync.agent_signature: expected one line"),
        ({"sync": {"agent_signature": "— {agent_first_name!r}"}}, "sync.agent_signature: expected one line"),
        ({"sync": {"agent_signature": "— {agent_name:>500}"}}, "sync.agent_signature: expected one line"),
        ({"sync": {"agent_signature": "— {{agent_name}}"}}, "sync.agent_signature: expected one line"),
        ({"sync": {"agent_signature": "— {agent_name}\tCSKH"}}, "sync.agent_signature: expected one line"),
        ({"sync": {"agent_signature_position": "middle"}}, "sync.agent_signature_position: expected one of"),
        ({"sync": {"unanswered_minutes": -1}}, "sync.unanswered_minutes: expected minutes from 0"),
        ({"mystery": {}}, "[mystery] is unknown"),
        ({"route": {"tag": "VIP"}}, "config [[route]]: expected tables written [[route]]"),
        ({"route": [{"tag": "VIP"}]}, "config [[route]] 1: channel_id is missing"),
        (
            {"route": [{"tag": "VIP", "keyword": "x", "channel_id": "c"}]},
            "expected exactly one of tag, keyword, oa or zalo_group",
        ),
        ({"route": [{"channel_id": "c"}]}, "expected exactly one of tag, keyword, oa or zalo_group to match, got none"),
        ({"route": [{"tag": "VIP", "channel_id": "c", "queue": "q"}]}, "config [[route]] 1: queue is unknown"),
        ({"route": [{"tag": 1, "channel_id": "c"}]}, "config [[route]] 1: expected text values"),
    ],
)
def test_bad_values_fail_with_one_line_naming_the_key(patch, message):
    with pytest.raises(ConfigError) as caught:
        config.from_mapping({**MINIMAL, **patch}, SECRETS)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_routes_are_read_in_order():
    raw = {
        **MINIMAL,
        "route": [{"tag": " VIP ", "channel_id": "c1", "group_id": "g1"}, {"keyword": "bảo hành", "channel_id": "c2"}],
    }
    routes = config.from_mapping(raw, SECRETS).routes
    assert [(r.tag, r.keyword, r.channel_id, r.group_id) for r in routes] == [
        ("VIP", "", "c1", "g1"),
        ("", "bảo hành", "c2", ""),
    ]


def test_missing_secret_names_the_variable():
    with pytest.raises(ConfigError, match="ZFSYNC_FRESHCHAT_API_KEY"):
        config.from_mapping(MINIMAL, {"ZFSYNC_ZALO_APP_SECRET": "s"})


def test_load_reads_dotenv_beside_the_file_and_resolves_the_store(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(
        '[zalo]\napp_id = "1"\n[freshchat]\napi_url = "https://x.freshchat.com"\nchannel_id = "c"\n'
        '[store]\npath = "state/z.db"\n'
    )
    (tmp_path / ".env").write_text("ZFSYNC_ZALO_APP_SECRET=from-file\nZFSYNC_FRESHCHAT_API_KEY=k\n")
    (tmp_path / ".env").chmod(0o640)
    settings = config.load(path, env={})
    assert settings.zalo.app_secret == "from-file"
    assert settings.store_path == tmp_path / "state" / "z.db"


@pytest.mark.parametrize("mode", [0o644, 0o666, 0o604])
def test_a_secrets_file_every_user_can_read_is_refused_with_the_chmod_that_fixes_it(tmp_path, mode):
    path = tmp_path / "config.toml"
    path.write_text('[zalo]\napp_id = "1"\n[freshchat]\napi_url = "https://x.freshchat.com"\nchannel_id = "c"\n')
    env = tmp_path / "zfsync.env"
    env.write_text("ZFSYNC_ZALO_APP_SECRET=s\nZFSYNC_FRESHCHAT_API_KEY=k\n")
    env.chmod(mode)
    with pytest.raises(ConfigError, match=rf"secrets file {env} is readable by every user .*chmod o-rwx {env}"):
        config.load(path, env={})
    path.write_text(path.read_text() + "[security]\nallow_readable_secrets = true\n")
    assert config.load(path, env={}).readable_secrets == (env,)  # allowed: run, and say so (`zfsync run`)
    env.chmod(0o640)  # root:zfsync 0640, as scripts/install makes it
    path.write_text(path.read_text().replace("true", "false"))
    assert config.load(path, env={}).readable_secrets == ()


def test_invalid_toml_and_missing_file_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[zalo\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(bad, env=SECRETS)
    with pytest.raises(ConfigError, match="does not exist"):
        config.resolve_path(str(tmp_path / "none.toml"), env={})
    assert config.resolve_path(None, env={"ZFSYNC_CONFIG": str(bad)}) == bad


def test_example_config_is_valid_and_documents_every_key():
    from pathlib import Path

    text = (Path(__file__).parents[2] / "config.example.toml").read_text()
    import tomllib

    config.from_mapping(tomllib.loads(text), SECRETS)
    for section, keys in config.SCHEMA.items():
        for key in keys:
            assert f"\n{key} = " in text, f"{section}.{key} is not in config.example.toml"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"sync": {"display_name": "{name.__class__.__mro__}"}}, "sync.display_name: expected a template"),
        ({"sync": {"display_name": "{name:>99999999}"}}, "sync.display_name: expected a template"),
        ({"sync": {"display_name": "{name!r}"}}, "sync.display_name: expected a template"),
        ({"sync": {"display_name": "{}"}}, "sync.display_name: expected a template"),
        ({"sync": {"resolve_notice": "x" * 2001}}, "sync.resolve_notice: Zalo takes at most 2,000"),
        ({"zalo": {"api_url": "http://openapi.zalo.me"}}, "zalo.api_url: http://openapi.zalo.me is plain http"),
        ({"freshchat": {"api_url": "http://10.0.0.5"}}, "freshchat.api_url: http://10.0.0.5 is plain http"),
    ],
)
def test_unsafe_values_are_refused_with_one_line(raw, message):
    base = {"zalo": {"app_id": "1"}, "freshchat": {"api_url": "https://a.freshchat.com", "channel_id": "c"}}
    for section, values in raw.items():
        base[section] = {**base.get(section, {}), **values}
    with pytest.raises(ConfigError) as caught:
        config.from_mapping(base, SECRETS)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_plain_http_is_for_loopback_or_when_asked_for():
    secrets = {"ZFSYNC_ZALO_APP_SECRET": "s", "ZFSYNC_FRESHCHAT_API_KEY": "k"}
    local = {"zalo": {"app_id": "1", "api_url": "http://127.0.0.1:8701"}}
    local["freshchat"] = {"api_url": "http://localhost:8702", "channel_id": "c"}
    assert config.from_mapping(local, secrets).zalo.api_url == "http://127.0.0.1:8701"
    asked = {"zalo": {"app_id": "1", "api_url": "http://proxy.lan", "allow_insecure_http": True}}
    asked["freshchat"] = {"api_url": "https://a.freshchat.com", "channel_id": "c"}
    assert config.from_mapping(asked, secrets).zalo.api_url == "http://proxy.lan"


def test_a_config_that_is_not_utf8_is_one_line(tmp_path):
    path = tmp_path / "config.toml"
    path.write_bytes(b'[zalo]\napp_id = "\xff\xfe"\n')
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        config.load(path, {})


def test_every_fleet_key_is_documented_in_the_example():
    from pathlib import Path

    from zfsync.config.fleet import FLEET_KEYS

    text = (Path(__file__).parents[2] / "config.example.toml").read_text()
    fleet = text[text.index("# [fleet]") :]
    for key in FLEET_KEYS:
        assert f"\n# {key} = " in fleet, f"fleet.{key} is not in config.example.toml"


FLEET_KEY = "ZFSYNC_SECRETS_KEY=" + "k" * 43 + "="


@pytest.mark.parametrize(
    ("toml", "env", "says"),
    [
        ("[fleet]\n[zalo]\napp_id = 'x'\n", FLEET_KEY, "has [fleet] and [zalo]: a fleet's tenants keep their own"),
        ("[fleet]\nzalo_requests_per_minute = 0\n", FLEET_KEY, "fleet.zalo_requests_per_minute: expected a whole"),
        ("[fleet]\nquiet = 3\n", FLEET_KEY, "fleet.quiet is unknown"),
        ("[fleet]\n[extra]\n", FLEET_KEY, "[extra] is unknown in a fleet's config"),
        ("[fleet]\n", "", "ZFSYNC_SECRETS_KEY is missing"),
    ],
)
def test_a_fleet_config_mistake_is_one_line_naming_the_fix(tmp_path, toml, env, says):
    from zfsync.config.fleet import load_fleet

    path = tmp_path / "fleet.toml"
    path.write_text(toml)
    secrets = dict([env.split("=", 1)]) if env else {}
    with pytest.raises(ConfigError, match=re.escape(says)) as caught:
        load_fleet(path, env=secrets)
    assert "\n" not in str(caught.value)


def test_a_tenant_runs_with_its_own_config_and_the_fleets_store(tmp_path):
    from zfsync.config.fleet import load_fleet, tenant_settings

    path = tmp_path / "fleet.toml"
    path.write_text("[fleet]\nquiet_after = 60\n[store]\npath = 'fleet.db'\n")
    fleet = load_fleet(path, env={"ZFSYNC_SECRETS_KEY": "k" * 43 + "="})
    own = "[zalo]\napp_id = 'a1'\n[freshchat]\napi_url = 'https://x.freshchat.com'\nchannel_id = 'c'\n"
    own += "[store]\npath = '/elsewhere.db'\n[sync]\nlanguage = 'en'\n"
    settings = tenant_settings(fleet, "shop", 7, own, {"ZFSYNC_FRESHCHAT_API_KEY": "k", "ZFSYNC_ZALO_APP_SECRET": "s"})
    assert (settings.store_path, settings.tenant, settings.tenant_id) == (tmp_path / "fleet.db", "shop", 7)
    assert settings.zalo.app_id == "a1" and settings.sync.language == "en" and fleet.quiet_after == 60
