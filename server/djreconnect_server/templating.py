"""Jinja2 rendering of views, and the include helper ``{{ djreconnect_scripts() }}``."""

import json

import jinja2
from djreconnect import constants
from djreconnect.banner import CONFIG_KEYS, BannerTexts
from markupsafe import Markup, escape

# What a page may set through its include: the banner's words.
BANNER_KEYS = frozenset(CONFIG_KEYS.values())
RUNTIME_ENTRY = "from djreconnect.browser import main\nruntime = main()\n"


def _script_json(value):
    """JSON safe to put inside a <script> element."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# PyScript's script type and the interpreter module, per interpreter.
INTERPRETER_SCRIPTS = {
    constants.INTERPRETER_PYODIDE: ("py", "/pyodide/pyodide.mjs"),
    constants.INTERPRETER_MICROPYTHON: ("mpy", "/micropython/micropython.mjs"),
}


def pyscript_config(settings, base, interpreter=None):
    """PyScript's config: the interpreter and the wheel to unpack, under asset URL ``base``."""
    if settings.cdn_base_url:
        from djreconnect import __version__

        wheel = "djreconnect-%s-py3-none-any.whl" % __version__
    else:
        wheel = settings.wheel_file().name
    return {
        "interpreter": base + INTERPRETER_SCRIPTS[interpreter or settings.interpreter][1],
        "files": {base + "/wheels/" + wheel: "./*"},
    }


def page_config(settings, overrides):
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


def include_html(settings, tokens, overrides=None):
    """The PyScript include: loader, interpreter config, the wheel, the runtime's settings.

    ``tokens`` maps view names on the page to their signed mount grants; ``overrides``
    are the page's own banner words (see ``page_config``).
    """
    base = settings.asset_base()
    runtime_config = page_config(settings, overrides or {})
    runtime_config["tokens"] = tokens
    return Markup(
        '<link rel="stylesheet" href="{base}/pyscript/core.css">\n'
        '<script type="module" src="{base}/pyscript/core.js"></script>\n'
        '<script type="application/json" id="{config_id}">{runtime}</script>\n'
        "<script type=\"{script_type}\" config='{pyscript}'>\n{entry}</script>"
    ).format(
        base=Markup(escape(base)),
        config_id=constants.CONFIG_ELEMENT_ID,
        runtime=Markup(_script_json(runtime_config)),
        script_type=INTERPRETER_SCRIPTS[settings.interpreter][0],
        pyscript=json.dumps(pyscript_config(settings, base)),
        entry=Markup(RUNTIME_ENTRY),
    )


class Templates:
    """A Jinja2 environment for views, with the include helper as a global."""

    def __init__(self, settings, directories):
        self.settings = settings
        self.environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(directory) for directory in directories]),
            autoescape=jinja2.select_autoescape(default_for_string=True, default=True),
            undefined=jinja2.StrictUndefined,
        )
        self.environment.globals["djreconnect_scripts"] = self._scripts

    @jinja2.pass_context
    def _scripts(self, context, **overrides):
        return include_html(self.settings, context.get("dj_tokens", {}), overrides)

    def render(self, view, extra=None):
        if not view.template_name:
            raise RuntimeError("%s has no template_name" % type(view).__name__)
        context = view.get_context()
        context["dj_view_id"] = view.view_name
        if extra:
            context.update(extra)
        return self.environment.get_template(view.template_name).render(context)
