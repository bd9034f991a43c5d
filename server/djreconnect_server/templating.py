"""Jinja2 rendering of views, and the include helper ``{{ djreconnect_scripts() }}``."""

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from djreconnect import constants
from djreconnect.banner import CONFIG_KEYS, BannerTexts
from markupsafe import Markup

from djreconnect_server.views import LiveView

if TYPE_CHECKING:
    from djreconnect_server.settings import Settings

# What a page may set through its include: the banner's words.
BANNER_KEYS = frozenset(CONFIG_KEYS.values())
RUNTIME_ENTRY = "from djreconnect.browser import main\nruntime = main()\n"


def _script_json(value: object) -> str:
    """JSON safe to put inside a <script> element."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# PyScript's script type per interpreter.
SCRIPT_TYPES = {
    constants.INTERPRETER_PYODIDE: "py",
    constants.INTERPRETER_MICROPYTHON: "mpy",
}
_BOOT_JS = (Path(__file__).resolve().parent / "boot.js").read_text(encoding="utf-8")


def pyscript_config(settings: "Settings", base: str, interpreter: str | None = None) -> dict[str, Any]:
    """PyScript's config: the interpreter, and the wheel to unpack (no micropip needed);
    ``base`` is the backend's URL and prefix as pages see it."""
    urls = settings.asset_urls(base)
    return {
        "interpreter": urls[interpreter or settings.interpreter],
        "files": {urls["wheel"]: "./*"},
    }


def page_config(settings: "Settings", overrides: dict[str, str]) -> dict[str, Any]:
    """The runtime settings for one page: the backend's, with the page's own banner words
    (``djreconnect_scripts(banner_reconnecting=..., banner_failed=..., banner_retry=...)``)."""
    config = settings.client_config()
    unknown = sorted(key for key in overrides if key not in BANNER_KEYS)
    if unknown:
        raise TypeError(
            "djreconnect_scripts() takes only %s, not %s" % (", ".join(sorted(BANNER_KEYS)), ", ".join(unknown))
        )
    if overrides:
        config.update(BannerTexts.from_config(overrides, settings.banner).to_config())
    return config


def boot_script(settings: "Settings | None" = None) -> str:
    """The boot loader (``boot.js``) with the names and limits it works with."""
    timeout = settings.boot_timeout_ms if settings is not None else constants.DEFAULT_BOOT_TIMEOUT_MS
    names = {
        "global": constants.BOOT_GLOBAL,
        "view": constants.ATTR_VIEW,
        "click": constants.ATTR_CLICK,
        "submit": constants.ATTR_SUBMIT,
        "failed": constants.CLASS_BOOT_FAILED,
        "error": constants.CLASS_BOOT_ERROR,
        "message": constants.BOOT_ERROR_MESSAGE,
        "css": constants.BOOT_ERROR_CSS,
        "limit": constants.BOOT_RECORD_LIMIT,
        "bytes": constants.BOOT_RECORD_CHARS,
        "timeout_ms": timeout,
    }
    return _BOOT_JS.rstrip() + "(" + _script_json(names) + ");\n"


def _attrs(**attributes: str | None) -> Markup:
    return Markup("").join(
        Markup(' {}="{}"').format(name.replace("_", "-"), value) for name, value in attributes.items() if value
    )


def include_html(settings: "Settings", tokens: dict[str, str], overrides: dict[str, str] | None = None) -> Markup:
    """The include: the boot loader, preloads, PyScript, the runtime's settings, and
    the interpreter's script that unpacks the wheel and starts the runtime.

    ``tokens`` maps view names on the page to their signed mount grants; ``overrides``
    are the page's own banner words (see ``page_config``).
    """
    base = settings.public_url + settings.prefix
    urls = settings.asset_urls(base)
    integrity = settings.integrity(base)
    runtime_config = page_config(settings, overrides or {})
    runtime_config["tokens"] = tokens
    parts = [Markup("<script>{}</script>").format(Markup(boot_script(settings)))]
    modules = {url: value for url, value in integrity.items() if url.endswith((".js", ".mjs"))}
    if modules:
        # Integrity for every module PyScript and the interpreter import (dynamic imports too).
        parts.append(
            Markup('<script type="importmap">{}</script>').format(Markup(_script_json({"integrity": modules})))
        )
    for url, kind in settings.preloads(base=base):
        if kind == "module":
            parts.append(
                Markup('<link rel="modulepreload" href="{}"{}>').format(url, _attrs(integrity=integrity.get(url)))
            )
        else:
            parts.append(Markup('<link rel="preload" as="fetch" crossorigin href="{}">').format(url))
    css_integrity = integrity.get(urls["pyscript_css"])
    parts.append(
        Markup('<link rel="stylesheet" href="{}"{}>').format(
            urls["pyscript_css"], _attrs(integrity=css_integrity, crossorigin="anonymous" if css_integrity else None)
        )
    )
    parts.append(
        Markup('<script type="module" src="{}"{}></script>').format(
            urls["pyscript"], _attrs(integrity=integrity.get(urls["pyscript"]))
        )
    )
    parts.append(
        Markup('<script type="application/json" id="{}">{}</script>').format(
            constants.CONFIG_ELEMENT_ID, Markup(_script_json(runtime_config))
        )
    )
    parts.append(
        Markup("<script type=\"{}\" config='{}'>\n{}</script>").format(
            SCRIPT_TYPES[settings.interpreter], json.dumps(pyscript_config(settings, base)), Markup(RUNTIME_ENTRY)
        )
    )
    return Markup("\n").join(parts)


class Templates:
    """A Jinja2 environment for views, with the include helper as a global."""

    def __init__(self, settings: "Settings", directories: Iterable[str | os.PathLike[str]]) -> None:
        self.settings = settings
        self.environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(directory) for directory in directories]),
            autoescape=jinja2.select_autoescape(default_for_string=True, default=True),
            undefined=jinja2.StrictUndefined,
        )
        self.environment.globals["djreconnect_scripts"] = self._scripts

    @jinja2.pass_context
    def _scripts(self, context: jinja2.runtime.Context, **overrides: str) -> Markup:
        return include_html(self.settings, context.get("dj_tokens", {}), overrides)

    def render(self, view: LiveView, extra: dict[str, Any] | None = None) -> str:
        if not view.template_name:
            raise RuntimeError("%s has no template_name" % type(view).__name__)
        context = view.get_context()
        context["dj_view_id"] = view.view_name
        if extra:
            context.update(extra)
        return self.environment.get_template(view.template_name).render(context)
