"""Several demo processes sharing a real Redis, behind a real nginx (round-robin, no
stickiness, over both transports: an SSE page's POSTs reach every process, and those that
miss its stream's process are routed to it), in a real Chromium: a long edit spread over
the processes keeps every keystroke and click, in order, once; a page keeps its session
when its process dies, a comment added on one process reaches a page on another, a
rolling restart (SIGTERM, one process at a time) leaves every page resumed with its
state, and Redis stopped and started mid-session heals by itself.

MicroPython only: every test boots several pages, and these suites are about the
servers, not the interpreter (the runtime's core is the same code on both)."""

import pytest
from services import Nginx, RedisServer
from support import DemoServer, free_port, new_page, server_state, wait_connected, wait_server_state

pytestmark = pytest.mark.browser

PROCESSES = 3
HEARTBEAT_MS = 1000
FAST = [
    "--backoff-min-ms",
    "100",
    "--backoff-base-ms",
    "200",
    "--backoff-max-ms",
    "1000",
    "--max-attempts",
    "60",
    "--heartbeat-interval-ms",
    str(HEARTBEAT_MS),
    "--heartbeat-timeout-ms",
    str(HEARTBEAT_MS),
    "--connect-timeout-ms",
    "2000",
    "--restart-window-ms",
    "1000",
    "--interpreter",
    "micropython",
]

MOUNT_RECORDER = """() => {
  window.djMounts = [];
  if (!window.djMountsListening) {
    window.djMountsListening = true;
    document.addEventListener('djreconnect:mounted', e => window.djMounts.push(e.detail.mode));
  }
}"""


@pytest.fixture(scope="module", params=["ws", "sse"])
def transport(request):
    return request.param


@pytest.fixture(scope="module")
def redis_server():
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cluster(redis_server, transport, tmp_path_factory):
    """PROCESSES demo processes on one Redis, and nginx in front of them."""
    # Pages reach the processes through nginx, under nginx's host and port: they trust it.
    nginx_port = free_port()
    trusted = ("--trusted-host", "127.0.0.1:%d" % nginx_port)
    backends = [
        DemoServer(*FAST, "--transport", transport, "--store", redis_server.url, *trusted) for _ in range(PROCESSES)
    ]
    proxy = None
    try:
        for backend in backends:
            backend.start()
        proxy = Nginx(
            [backend.port for backend in backends],
            tmp_path_factory.mktemp("nginx"),
            port=nginx_port,
        ).start()
        yield proxy, backends
    finally:
        if proxy is not None:
            proxy.stop()
        for backend in backends:
            backend.stop()


def open_page(browser, guard, url):
    context, page = new_page(browser, guard)
    page.goto(url + "/")
    wait_connected(page)
    page.evaluate(MOUNT_RECORDER)
    return context, page


def click_times(page, times):
    before = server_state(page)["clicks"]
    for _ in range(times):
        page.click("#clicks")
    return wait_server_state(page, lambda s: s["clicks"] == before + times)["clicks"]


def mounts(page):
    return page.evaluate("window.djMounts")


def comments(page):
    return page.eval_on_selector_all("#comments li", "items => items.map(li => li.textContent)")


def add_comment(page, text):
    page.fill("#comment", text)
    page.click("#add-comment")


def test_a_long_edit_spread_over_processes_keeps_every_character_in_order(browser, guard, cluster):
    proxy, _ = cluster
    context, page = open_page(browser, guard, proxy.url)
    try:
        typed = ""
        clicks = server_state(page)["clicks"]
        page.click("#body")
        # Keystrokes and clicks, one after another: over SSE each is a POST, and round-robin
        # sends two in three to a process that does not hold the page's stream.
        for word in ("Several", "processes,", "one", "stream:", "every", "keystroke", "arrives", "once."):
            page.keyboard.type(word + " ")
            typed += word + " "
            # Caught up before the field loses focus (a reply applied to a field the user
            # left moves its value to the server's, which must be the newest by then).
            wait_server_state(page, lambda s, typed=typed: s["body"] == typed, timeout=30)
            page.click("#clicks")
            clicks += 1
            page.click("#body")
            page.keyboard.press("End")
        state = wait_server_state(page, lambda s: s["body"] == typed and s["clicks"] == clicks, timeout=30)
        page.wait_for_timeout(500)  # a frame applied twice or late would show by now
        assert server_state(page) == state
        assert page.input_value("#body") == typed
        assert mounts(page) == []  # every POST was answered: the page never reconnected
        assert page.evaluate("window.djreconnect.state") == "connected"
    finally:
        context.close()


def test_a_page_keeps_its_session_when_its_process_is_killed(browser, guard, cluster):
    proxy, backends = cluster
    context, page = open_page(browser, guard, proxy.url)
    try:
        clicks = click_times(page, 3)
        # Kill every process in turn (so surely the page's own), each back before the next.
        for backend in backends:
            backend.kill()
            page.wait_for_timeout(300)
            backend.start()
            wait_connected(page, timeout=30_000)
            clicks = click_times(page, 1)
        assert clicks == 3 + PROCESSES  # nothing lost, nothing applied twice
        assert mounts(page) and set(mounts(page)) == {"resume"}  # moved, never remounted
    finally:
        context.close()


def test_a_comment_added_on_one_process_reaches_a_page_on_another(browser, guard, cluster):
    _, backends = cluster
    first_context, first = open_page(browser, guard, backends[0].url)
    second_context, second = open_page(browser, guard, backends[1].url)
    try:
        before = comments(first)
        add_comment(first, "from process one")
        expected = before + ["from process one"]
        second.wait_for_function(
            "n => document.querySelectorAll('#comments li').length === n", arg=len(expected), timeout=3000
        )
        assert comments(second) == expected
        # A page away from its process (its session retained in Redis) gets it on resume, once.
        second.context.set_offline(True)
        second.wait_for_function("window.djreconnect.state === 'reconnecting'", timeout=10_000)
        add_comment(first, "while the other was away")
        first.wait_for_function(
            "n => document.querySelectorAll('#comments li').length === n", arg=len(expected) + 1, timeout=3000
        )
        second.context.set_offline(False)
        wait_connected(second, timeout=20_000)
        expected = expected + ["while the other was away"]
        second.wait_for_function(
            "n => document.querySelectorAll('#comments li').length === n", arg=len(expected), timeout=5000
        )
        assert comments(second) == expected
        assert set(mounts(second)) == {"resume"}
        # A page opened afterwards on the third process shows them too (they live in Redis).
        third_context, third = open_page(browser, guard, backends[2].url)
        try:
            assert comments(third)[-2:] == expected[-2:]
        finally:
            third_context.close()
    finally:
        first_context.close()
        second_context.close()


def test_a_rolling_restart_leaves_every_page_resumed_with_its_state(browser, guard, cluster):
    proxy, backends = cluster
    pages = []
    try:
        for number in range(4):
            pages.append(open_page(browser, guard, proxy.url))
        expected = []
        for number, (_, page) in enumerate(pages):
            expected.append(click_times(page, number + 1))
        for backend in backends:
            backend.terminate()  # SIGTERM: sessions to Redis, 1012 with the restart hint
            backend.start()
        for (_, page), clicks in zip(pages, expected):
            wait_connected(page, timeout=30_000)
            assert click_times(page, 1) == clicks + 1
            assert mounts(page) and set(mounts(page)) == {"resume"}
            assert page.evaluate("window.djreconnect.state") == "connected"
    finally:
        for context, _ in pages:
            context.close()


def test_redis_stopped_and_started_mid_session_heals_by_itself(browser, guard, cluster, redis_server, transport):
    proxy, _ = cluster
    context, page = open_page(browser, guard, proxy.url)
    try:
        click_times(page, 2)
        redis_server.stop()
        page.click("#clicks")  # cannot be saved: the server says so and closes with 1013
        page.wait_for_function("window.djreconnect.state === 'reconnecting'", timeout=15_000)
        page.fill("#title", "typed while Redis was down")
        page.wait_for_timeout(1500)  # attempts meanwhile are answered with an error, not hung
        # The page was told why: by the process serving its session (the error frame), or,
        # over SSE, by the process its POST reached, which could not route it (503).
        told = [line for line in guard.console if "store_unavailable" in line or "503" in line]
        assert told if transport == "sse" else any("store_unavailable" in line for line in told)
        redis_server.start()  # empty (no persistence): the session is gone, the page remounts
        wait_connected(page, timeout=30_000)
        # The title by form recovery, the click the page held sent again after the remount.
        wait_server_state(page, lambda s: s["title"] == "typed while Redis was down" and s["clicks"] >= 1, timeout=15)
        page.wait_for_timeout(500)  # a second application would show by now
        assert server_state(page)["clicks"] == 1
        click_times(page, 1)  # and the page works on
        assert mounts(page)[-1] == "remount"
    finally:
        context.close()
