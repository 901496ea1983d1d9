"""The bound on connections per client address (bot.web.clientcap): pure bookkeeping, with an injected clock."""

from __future__ import annotations

from bot.web.clientcap import ClientTable


def test_beyond_the_bound_the_oldest_idle_connection_makes_room_after_the_grace() -> None:
    table = ClientTable(per_client=2, grace=1.0)
    a, b = table.admit("10.0.0.9", "a", 0.0), table.admit("10.0.0.9", "b", 0.5)
    assert a.conn and b.conn and not a.shed and not b.shed
    # Within the grace nothing may be shed: the new connection is the one turned away.
    assert table.admit("10.0.0.9", "c", 0.9).conn is None
    # After it, the oldest idle one goes, the newest is admitted; the bound holds.
    d = table.admit("10.0.0.9", "d", 1.2)
    assert d.conn is not None and [c.sock for c in d.shed] == ["a"] and table.held("10.0.0.9") == 2
    # Another address is not affected.
    assert table.admit("10.0.0.1", "gitlab", 1.2).conn is not None


def test_a_connection_in_the_middle_of_a_request_is_never_shed() -> None:
    table = ClientTable(per_client=1, grace=0.0)
    first = table.admit("10.0.0.9", "busy", 0.0)
    table.busy("busy")
    assert table.admit("10.0.0.9", "new", 5.0).conn is None
    table.idle("busy", 6.0)  # answered; waiting for its next request (keep-alive)
    later = table.admit("10.0.0.9", "new", 6.0)
    assert later.conn is not None and [c.sock for c in later.shed] == ["busy"]
    assert first.conn is not None
    table.release(first.conn)  # its handler ends: already forgotten, nothing breaks
    assert table.held("10.0.0.9") == 1


def test_no_bound_admits_everything() -> None:
    table = ClientTable(per_client=0)
    assert all(table.admit("10.0.0.9", n, 0.0).conn for n in range(500))
