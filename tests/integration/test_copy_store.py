"""`zfsync copy-store`: the store moves to an empty PostgreSQL database (to add a standby VM), and the
bridge carries on from it as if nothing happened."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import SIMS, cli_config, make_engine, make_settings, on, open_store
from zfsync import cli
from zfsync.sim.freshchat import AGENT_ID
from zfsync.store.lock import only_instance

KHANH = "2512007384617209999"


def texts(messages: list[dict]) -> list[str]:
    return [p["text"]["content"] for m in messages for p in m["message_parts"] if "text" in p]


@on(SIMS)
def test_the_bridge_carries_on_from_the_copy_with_nothing_lost_or_sent_twice(
    bridge, pg_cluster, tmp_path, monkeypatch, capsys
):
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="m1")
    bridge.cycle()
    bridge.fc.add_agent_message(bridge.conversation_of(KHANH), "Dạ, em nghe", actor_id=AGENT_ID)
    bridge.cycle()
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="m2")
    bridge.engine.poll_zalo()  # queued, not posted yet: the copy must carry it
    bridge.store.close()
    config = cli_config(tmp_path, bridge.settings.store_path, monkeypatch, bridge.settings.store_url)
    target = pg_cluster.create_database("moved")

    assert cli.main(["--config", str(config), "copy-store", target]) == 0
    out = capsys.readouterr().out
    assert "contacts 1, conversations 1, messages 3" in out and f'set [store] url = "{target}"' in out

    bridge.settings = make_settings(bridge.zalo_url, bridge.fc_url, bridge.settings.store_path, store_url=target)
    bridge.store = open_store(bridge.settings)
    bridge.engine = make_engine(bridge)
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="m3")
    bridge.cycle()
    bridge.fc.add_agent_message(bridge.conversation_of(KHANH), "Dạ, em gửi ạ", actor_id=AGENT_ID)
    bridge.settle(rounds=3)
    assert texts(bridge.customer_messages(KHANH)) == ["m1", "m2", "m3"]
    assert len(bridge.fc_state()["conversations"]) == 1  # the same conversation, not a new one
    assert bridge.sent_to(KHANH) == ["Dạ, em nghe", "Dạ, em gửi ạ"]  # (m3's rows took ids after the copied ones)


@on(SIMS)
def test_a_store_in_use_or_not_empty_is_refused_in_one_line(bridge, pg_cluster, tmp_path, monkeypatch, capsys):
    bridge.store.close()
    config = cli_config(tmp_path, bridge.settings.store_path, monkeypatch, bridge.settings.store_url)
    target = pg_cluster.create_database("refused")
    if not bridge.settings.store_url:
        with only_instance(bridge.settings.store_path):
            assert cli.main(["--config", str(config), "copy-store", target]) == 1
        assert "another zfsync daemon" in capsys.readouterr().err
    assert cli.main(["--config", str(config), "copy-store", target]) == 0
    capsys.readouterr()
    assert cli.main(["--config", str(config), "copy-store", target]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("zfsync: store ") and "is not empty" in err and "\n" not in err
    password_url = target.replace("://zfsync@", "://zfsync:secret@", 1)
    assert password_url != target
    assert cli.main(["--config", str(config), "copy-store", password_url]) == 2
    assert "secret" not in capsys.readouterr().err
    assert cli.main(["--config", str(config), "copy-store", str(Path(bridge.settings.store_path))]) == 2


@on(SIMS)
def test_a_postgresql_store_copies_back_into_a_file(bridge, pg_cluster, tmp_path, monkeypatch, capsys):
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="m1")
    bridge.cycle()

    def seen(store):
        return store.contact_by_id(1), store.current_conversation(1), store.feed_cursor(), store.load_tokens()

    before = seen(bridge.store)
    assert before[0].fc_user_id and before[1] is not None
    bridge.store.close()
    there = pg_cluster.create_database("there")
    config = cli_config(tmp_path, bridge.settings.store_path, monkeypatch, bridge.settings.store_url)
    assert cli.main(["--config", str(config), "copy-store", there]) == 0
    (tmp_path / "pg").mkdir()
    config = cli_config(tmp_path / "pg", tmp_path / "unused.db", monkeypatch, there)
    back = tmp_path / "back" / "zfsync.db"
    assert cli.main(["--config", str(config), "copy-store", f"sqlite://{back}"]) == 0
    assert "contacts 1, conversations 1, messages 1" in capsys.readouterr().out
    settings = make_settings(bridge.zalo_url, bridge.fc_url, back)
    store = open_store(settings)
    try:
        assert seen(store) == before  # the contact, their conversation, the feed's cursor and the tokens
    finally:
        store.close()
