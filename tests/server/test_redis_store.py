"""The redis:// store against a real redis-server: retention as expiry, the count and byte
bounds, one process at a time per session (atomic take), write-through saves, pushes to
retained sessions, and an unreachable Redis."""

import asyncio
import time

import pytest
from djreconnect_server import redisstore
from djreconnect_server.redisstore import RedisStore
from djreconnect_server.sessions import Session, SessionMoved, SessionRegistry, ViewState
from djreconnect_server.stores import StoreLimits, StoreUnavailable, check_store_url, open_store
from djreconnect_server.views import LiveView
from services import RedisServer

from .asyncrun import run


class NoteView(LiveView):
    def mount(self, request, **kwargs):
        self.note = ""


def build_view(name, state):
    if name != NoteView.view_name:
        return None
    view = NoteView()
    view.load_state(state)
    return view


@pytest.fixture(scope="module")
def redis_server():
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def url(redis_server):
    import redis

    redis.Redis.from_url(redis_server.url).flushdb()
    return redis_server.url


def make_session(note="", topics=()):
    session = Session()
    view = NoteView()
    view.mount(None)
    view.note = note
    for topic in topics:
        view.subscribe(topic)
    session.views["v1"] = ViewState(NoteView.view_name, view, "<p>%s</p>" % note, 1)
    secret = session.rotate_secret()
    return session, secret


def store(url, **limits):
    return RedisStore(url, build_view, StoreLimits(**limits) if limits else None)


def test_open_store_names_redis(url):
    assert check_store_url(url) == url
    with pytest.raises(ValueError, match="redis"):
        check_store_url("redis://host:notaport/0")

    async def go():
        opened = open_store(url, build_view)
        try:
            assert isinstance(opened, RedisStore) and opened.shared
        finally:
            await opened.close()

    run(go())


def test_keep_take_round_trip_spends_the_secret(url):
    async def go():
        one = store(url, retention_s=30)
        try:
            session, secret = make_session("hello")
            await one.keep(session)
            assert await one.count() == 1
            ttl = await one.redis.pttl(one.key(session.id))
            assert 29_000 < ttl <= 30_000  # the retention is the key's expiry
            assert await one.take(session.id, "not the secret") is None
            taken = await one.take(session.id, secret)
            assert taken.views["v1"].view.note == "hello"
            assert taken.views["v1"].html == "<p>hello</p>"
            assert await one.count() == 0
            # A secret works once: the same secret cannot take it again.
            assert await one.take(session.id, secret) is None
        finally:
            await one.close()

    run(go())


def test_two_processes_resuming_one_session_cannot_both_win(url):
    async def go():
        stores = [store(url) for _ in range(6)]
        try:
            session, secret = make_session("x")
            await stores[0].keep(session)
            results = await asyncio.gather(*(s.take(session.id, secret) for s in stores))
            assert sum(result is not None for result in results) == 1
        finally:
            for each in stores:
                await each.close()

    run(go())


def test_a_crashed_owner_cannot_overwrite_a_session_resumed_elsewhere(url):
    async def go():
        a, b = store(url), store(url)
        try:
            session, secret = make_session("from a")
            assert await a.save(session)  # attached on a, written through
            # a dies (no keep); the page resumes on b with its current secret.
            taken = await b.take(session.id, secret)
            assert taken is not None and taken.views["v1"].view.note == "from a"
            # a comes back to life with its stale copy: its writes are refused.
            session.views["v1"].view.note = "stale"
            assert await a.save(session) is False
            assert await a.keep(session) is False
            registry = SessionRegistry(a)
            with pytest.raises(SessionMoved):
                await registry.save(session)
            # b's writes go through, and b's copy is what a later resume gets.
            taken.views["v1"].view.note = "from b"
            new_secret = taken.rotate_secret()
            assert await b.save(taken)
            assert await b.keep(taken)
            again = await a.take(session.id, new_secret)
            assert again.views["v1"].view.note == "from b"
        finally:
            await a.close()
            await b.close()

    run(go())


def test_count_bound_evicts_the_least_recently_kept(url):
    async def go():
        one = store(url, max_sessions=3)
        try:
            kept = []
            for number in range(5):
                session, secret = make_session(str(number))
                await one.keep(session)
                kept.append((session, secret))
            assert await one.count() == 3
            assert one.evicted == 2
            assert await one.take(kept[0][0].id, kept[0][1]) is None
            assert await one.take(kept[1][0].id, kept[1][1]) is None
            assert await one.take(kept[4][0].id, kept[4][1]) is not None
        finally:
            await one.close()

    run(go())


def test_keeps_within_one_millisecond_are_evicted_in_the_order_they_were_kept(url, monkeypatch):
    monkeypatch.setattr(redisstore, "_now_ms", lambda: 1_800_000_000_000)  # one clock reading for all

    async def go():
        one = store(url, max_sessions=2)
        try:
            kept = []
            for number in range(6):
                session, secret = make_session(str(number))
                await one.keep(session)
                kept.append((session, secret))
            for session, secret in kept[:4]:
                assert await one.take(session.id, secret) is None
            for session, secret in kept[4:]:
                assert await one.take(session.id, secret) is not None
        finally:
            await one.close()

    run(go())


def test_byte_bound_evicts_and_the_total_stays_exact(url):
    async def go():
        probe, _ = make_session("y" * 1000)
        size = len(RedisStore._encode(probe))
        one = store(url, max_bytes=size * 2 + size // 2)
        try:
            sessions = []
            for _ in range(4):
                session, secret = make_session("y" * 1000)
                await one.keep(session)
                sessions.append((session, secret))
            assert await one.count() == 2
            total = int(await one.redis.get(one.prefix + "total"))
            assert total == sum(map(int, (await one.redis.hgetall(one.prefix + "sizes")).values()))
            assert total <= size * 2 + size // 2
            await one.take(sessions[3][0].id, sessions[3][1])
            assert int(await one.redis.get(one.prefix + "total")) == total - size
        finally:
            await one.close()

    run(go())


def test_a_session_past_its_retention_is_gone(url):
    async def go():
        one = store(url, retention_s=0.3)
        try:
            session, secret = make_session()
            await one.keep(session)
            await asyncio.sleep(0.5)
            assert await one.take(session.id, secret) is None
            other, _ = make_session()
            await one.keep(other)  # a keep trims what expired from the bounds
            assert await one.count() == 1
        finally:
            await one.close()

    run(go())


def test_a_push_to_a_retained_session_is_written_back_and_a_resume_waits_for_it(url):
    async def go():
        a, b = store(url), store(url)
        try:
            session, secret = make_session("before", topics=["news"])
            await a.keep(session)
            assert await a.topic_members("news") == [(session.id, "v1")]
            leased = await a.peek(session.id)
            assert leased is not None
            started = time.monotonic()
            resume = asyncio.ensure_future(b.take(session.id, secret))
            await asyncio.sleep(0.1)
            assert not resume.done()  # the push holds it
            leased.views["v1"].view.note = "pushed"
            await a.update(leased)
            taken = await resume
            assert taken.views["v1"].view.note == "pushed"
            assert time.monotonic() - started < 2
            # Attached now: a push finds nothing to lease (its process applies it).
            assert await a.peek(session.id) is None
        finally:
            await a.close()
            await b.close()

    run(go())


def test_topic_members_forget_sessions_that_are_gone(url):
    async def go():
        one = store(url, max_sessions=1)
        try:
            first, _ = make_session(topics=["t"])
            second, _ = make_session(topics=["t"])
            await one.keep(first)
            await one.keep(second)  # evicts the first
            assert await one.topic_members("t") == [(second.id, "v1")]
            assert await one.redis.scard(one.prefix + "topic:t") == 1
        finally:
            await one.close()

    run(go())


def test_an_unreachable_redis_is_a_clear_error_and_it_recovers(caplog):
    server = RedisServer().start()
    one = RedisStore(server.url, build_view)

    async def go():
        session, secret = make_session("kept")
        await one.keep(session)
        server.stop()
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="unreachable"):
            await one.take(session.id, secret)
        with pytest.raises(StoreUnavailable):
            await one.save(session)
        assert time.monotonic() - started < 5  # an error, not a hang
        server.start()  # empty: no persistence
        assert await one.take(session.id, secret) is None
        await one.keep(session)
        assert (await one.take(session.id, secret)).views["v1"].view.note == "kept"
        await one.close()

    try:
        with caplog.at_level("WARNING", logger="djreconnect"):
            run(go())
    finally:
        server.stop()
    messages = [record.getMessage() for record in caplog.records]
    assert any("unreachable" in message for message in messages)
    assert any("reachable again" in message for message in messages)


def test_a_burst_of_writes_queues_for_a_bounded_pool_of_connections(url):
    from djreconnect_server.redisstore import MAX_CONNECTIONS

    async def go():
        one = store(url)
        try:
            sessions = [make_session("burst")[0] for _ in range(600)]
            await asyncio.gather(*(one.keep(session) for session in sessions))  # a deploy's drain
            assert await one.count() == 600
            clients = await one.redis.client_list()
            assert len(clients) <= MAX_CONNECTIONS + 1  # (the listing's own connection is one of them)
        finally:
            await one.close()

    run(go())
