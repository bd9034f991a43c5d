"""Browser-suite fixtures: a real demo server process, one booted page per module,
and a guard that fails a test whose page reaches off 127.0.0.1."""

import pytest
from support import DemoServer, Guard, ensure_fresh_wheel, new_page, wait_connected


@pytest.fixture(scope="session", autouse=True)
def _fresh_wheel():
    ensure_fresh_wheel()


@pytest.fixture(scope="module")
def server_flags():
    """Extra ``djreconnect demo`` flags for a module's server; modules override this."""
    return []


@pytest.fixture(scope="module", params=["ws", "sse"])
def transport(request):
    """Every browser suite runs over both transports; a module may pin one."""
    return request.param


@pytest.fixture(scope="module", params=["pyodide", "micropython"])
def interpreter(request):
    """Every browser suite runs on both interpreters the runtime supports."""
    return request.param


@pytest.fixture(scope="module")
def server(server_flags, transport, interpreter):
    demo = DemoServer("--transport", transport, "--interpreter", interpreter, *server_flags).start()
    yield demo
    demo.stop()


@pytest.fixture(scope="module")
def guard():
    return Guard()


@pytest.fixture(scope="module")
def live_page(browser, server, guard):
    """The demo page, booted once for the module (Pyodide takes seconds)."""
    context, page = new_page(browser, guard)
    page.goto(server.url + "/")
    wait_connected(page)
    yield page
    context.close()


@pytest.fixture(autouse=True)
def _guarded(request, guard):
    guard.console = []
    yield
    guard.check()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    guard = item.funcargs.get("guard") if hasattr(item, "funcargs") else None
    if report.failed and guard is not None and guard.console:
        report.sections.append(("page console", "\n".join(guard.console[-60:])))
    return report
