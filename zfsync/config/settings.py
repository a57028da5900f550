"""The settings zfsync runs with, as `zfsync.config` reads and checks them (config.example.toml names
each key). Secrets are kept out of their repr, so a settings object never prints one."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from zfsync import i18n
from zfsync.domain import Route, TemplateChoice

# The customer's texts in the default language, from its catalogue (config.from_mapping picks the desk's).
_CUSTOMER_DEFAULTS = i18n.defaults(i18n.DEFAULT)


@dataclass(frozen=True)
class ZaloSettings:
    app_id: str
    app_secret: str = field(repr=False)
    api_url: str = "https://openapi.zalo.me"
    oauth_url: str = "https://oauth.zaloapp.com"
    zns_url: str = ""
    redirect_uri: str = ""
    poll_interval: float = 2.0
    feed_page_cap: int = 20
    requests_per_minute: int = 4000
    allow_insecure_http: bool = False


@dataclass(frozen=True)
class FreshChatSettings:
    api_url: str
    channel_id: str
    api_key: str = field(repr=False)
    hot_interval: float = 2.0
    warm_interval: float = 30.0
    cold_interval: float = 600.0
    requests_per_minute: int = 400
    forward_bot_messages: bool = False
    allow_insecure_http: bool = False


@dataclass(frozen=True)
class SyncSettings:
    display_name: str = "{name} Zalo"
    language: str = "vi"  # the desk's: agents' notes, customers' defaults, status problems (zfsync.i18n)
    resolve_notice: str = _CUSTOMER_DEFAULTS["resolve_notice"]
    long_text: str = "split"
    max_attempts: int = 10
    share_contact_details: bool = True  # what the customer shared with the OA fills their FreshChat user
    command_prefix: str = "/zalo"  # an agent's private note starting with it is a command ("/zalo info")
    window_warning_hours: float = 24.0  # warn the agent this long before the 7-day window closes; 0: never
    resolve_notice_when: str = "free_reply"  # "always", or only when it costs no paid message
    agent_notes: str = "all"  # which of zfsync's private notes agents see: "all", "failures" or "off"
    after_resolve: str = "reopen"  # a message after a resolve: "reopen" (within reopen_within_hours) or "new"
    reopen_within_hours: float = 24.0  # 0: reopen however long after the resolve
    retry_when_customer_returns: bool = True  # replies failed for the window, the follow or the quota: once more
    info_card_title: str = _CUSTOMER_DEFAULTS["info_card_title"]
    info_card_subtitle: str = _CUSTOMER_DEFAULTS["info_card_subtitle"]
    info_card_image: str = ""  # "": the OA's own avatar
    agent_signature: str = ""  # a line on each agent reply: text, {agent_first_name}, {agent_name}; "": none
    agent_signature_position: str = "suffix"  # or "prefix"
    unanswered_minutes: float = 30.0  # a customer message no agent answered this long is counted; 0: off
    import_history_days: int = 0  # at the first start, import each customer's last N days of Zalo history
    rating_template: str = ""  # a [[template]] sent once after a resolve an agent replied in; "": none
    rating_property: str = ""  # a FreshChat conversation property (cf_...) the stars are written to; "": none
    groups: bool = False  # the OA's Zalo group chats (GMF), each as a FreshChat conversation
    group_expiry_warning_days: int = 7  # a note this many days before a group's package ends; 0: none
    group_expiry_property: str = ""  # a conversation property (cf_...) showing a group's package end; "": none


@dataclass(frozen=True)
class MetricsSettings:
    textfile: Path | None = None  # where the daemon writes Prometheus metrics, for node_exporter
    listen: str = ""  # host:port to serve /metrics on; empty: no port is opened
    interval: float = 15.0


@dataclass(frozen=True)
class Settings:
    zalo: ZaloSettings
    freshchat: FreshChatSettings
    sync: SyncSettings
    store_path: Path
    log_level: str = "info"
    log_format: str = "auto"
    source: Path | None = None
    metrics: MetricsSettings = field(default_factory=lambda: MetricsSettings())
    store_url: str = ""  # a PostgreSQL store; empty: the SQLite file at store_path
    store_password: str = field(default="", repr=False)
    routes: tuple[Route, ...] = ()  # [[route]]: which channel (and group) a new conversation opens in
    templates: tuple[TemplateChoice, ...] = ()  # [[template]]: the ZNS templates agents send by short name
    readable_secrets: tuple[Path, ...] = ()  # secrets files every user can read (security.allow_readable_secrets)
    # A fleet's tenant (`zfsync.config.fleet`): its name and id in the fleet's store, and the key its
    # secrets and tokens are sealed with there. A single-OA install is tenant 0, unnamed, unsealed.
    tenant: str = ""
    tenant_id: int = 0
    secrets_key: str = field(default="", repr=False)

    @property
    def store_location(self) -> Path | str:
        """What `Store.open` is given: the PostgreSQL URL, else the SQLite file."""
        return self.store_url or self.store_path

    @property
    def lease_name(self) -> str:
        """What the active daemon's lock is keyed on: the OA's app and the FreshChat channel it serves."""
        return f"{self.zalo.app_id}/{self.freshchat.channel_id}"
