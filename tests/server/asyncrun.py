"""Run a coroutine to completion from a test, even when the test process already runs
an event loop on its main thread (pytest-playwright's sync API does)."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

_RUNNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="asyncrun")


def run(coroutine):
    return _RUNNER.submit(asyncio.run, coroutine).result()
