"""Shared test setup: which Chromium Playwright launches."""

import pytest
from chromium import launch_options


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args, playwright):
    """Playwright's own Chromium when it is installed; the system's otherwise."""
    try:
        options = launch_options(playwright, browser_type_launch_args.get("args", []))
    except RuntimeError as error:
        pytest.fail(str(error))
    return dict(browser_type_launch_args, **options)
