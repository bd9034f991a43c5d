"""The boot window, seen from the runtime: the clicks and submits the include's loader
kept before the runtime started, and a boot failure shown on the page.

The loader (``boot.js`` on the server side) sets ``window.djreconnectBoot``; its
``take()`` stops it and hands over records ``[kind, element, data]``: ``"click"`` or
``"submit"``, the ``dj-click``/``dj-submit`` element, and for a submit the form's
``FormData`` as it was when submitted (null for a click).
"""

from djreconnect import constants
from djreconnect.jsbridge import is_null, js


def loader(window):
    """The include's boot loader, or None (a page without it)."""
    found = getattr(window, constants.BOOT_GLOBAL, None)
    return None if is_null(found) else found


def take_records(window):
    """Stop the loader and return what it kept, as (kind, element, FormData or None),
    and how many it refused past its bounds."""
    boot = loader(window)
    if boot is None:
        return [], 0
    taken = boot.take()
    records = []
    for index in range(taken.length):
        record = taken[index]
        kind = record[0]
        if kind not in (constants.BOOT_CLICK, constants.BOOT_SUBMIT):
            continue
        records.append((kind, record[1], None if is_null(record[2]) else record[2]))
    return records, int(boot.refused)


def show_failure(window, message):
    """Say on the page that the runtime could not start: ``dj-boot-failed`` on <body>
    and a ``dj-boot-error`` element (through the loader when the page has it)."""
    js.console.error("djreconnect: " + message)
    boot = loader(window)
    if boot is not None:
        boot.fail(message)
        return
    document = window.document
    style = document.createElement("style")
    style.textContent = constants.BOOT_ERROR_CSS
    document.head.insertBefore(style, document.head.firstChild)
    element = document.createElement("div")
    element.className = constants.CLASS_BOOT_ERROR
    element.setAttribute("role", "alert")
    element.textContent = constants.BOOT_ERROR_MESSAGE + message
    document.body.insertBefore(element, document.body.firstChild)
    document.body.classList.add(constants.CLASS_BOOT_FAILED)
