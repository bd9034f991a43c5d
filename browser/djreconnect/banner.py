"""The reconnection banner's words: the texts an app or a page sets, checked, and their
placeholders filled in.

A text is plain text with placeholders: ``{attempt}`` and ``{max}`` in every text,
``{reason}`` in the failed text and its button. Filling in is one pass that replaces
those names only: a brace anywhere else, and any brace in the values themselves (a
reason the server sent), is left as it is, so no ``str.format`` surprises. A
``{name}`` that is not a placeholder of that text is refused when the text is set:
it is a typo that would otherwise show on every page.
"""

from djreconnect import constants

RECONNECTING = "reconnecting"
FAILED = "failed"
RETRY = "retry"

# Which placeholders each text may use.
PLACEHOLDERS = {
    RECONNECTING: ("attempt", "max"),
    FAILED: ("attempt", "max", "reason"),
    RETRY: ("attempt", "max", "reason"),
}
CONFIG_KEYS = {
    RECONNECTING: constants.CONFIG_BANNER_RECONNECTING,
    FAILED: constants.CONFIG_BANNER_FAILED,
    RETRY: constants.CONFIG_BANNER_RETRY,
}
DEFAULTS = {
    RECONNECTING: constants.DEFAULT_BANNER_RECONNECTING,
    FAILED: constants.DEFAULT_BANNER_FAILED,
    RETRY: constants.DEFAULT_BANNER_RETRY,
}
# Shown for {reason} when the runtime has none (it always gives one when it fails).
NO_REASON = "no reason given"


def _is_name(text):
    if not text or not (text[0].isalpha() or text[0] == "_"):
        return False
    for char in text:
        if not (char.isalpha() or char.isdigit() or char == "_"):
            return False
    return True


def _names(template):
    """The ``{name}`` placeholders a template uses (identifiers in braces only)."""
    names = []
    start = template.find("{")
    while start != -1:
        end = template.find("}", start + 1)
        if end == -1:
            break
        name = template[start + 1 : end]
        if _is_name(name):
            names.append(name)
            start = template.find("{", end + 1)
        else:
            start = template.find("{", start + 1)
    return names


def fill(template, values):
    """``template`` with each ``{name}`` whose name is in ``values`` replaced by its value,
    in one pass: nothing inserted is read again, every other brace stays."""
    out = []
    position = 0
    while True:
        start = template.find("{", position)
        if start == -1:
            break
        end = template.find("}", start + 1)
        if end == -1:
            break
        name = template[start + 1 : end]
        if name in values:
            out.append(template[position:start])
            out.append(str(values[name]))
            position = end + 1
        else:
            out.append(template[position : start + 1])
            position = start + 1
    out.append(template[position:])
    return "".join(out)


def check_text(which, text):
    """Raise ValueError unless ``text`` can be the ``which`` text of the banner."""
    key = CONFIG_KEYS[which]
    if not isinstance(text, str) or not text.strip():
        raise ValueError("%s must be a non-empty string, not %r" % (key, text))
    if len(text) > constants.MAX_BANNER_TEXT:
        raise ValueError("%s is longer than %d characters" % (key, constants.MAX_BANNER_TEXT))
    allowed = PLACEHOLDERS[which]
    for name in _names(text):
        if name not in allowed:
            raise ValueError(
                "%s has an unknown placeholder {%s}; it may use %s"
                % (key, name, ", ".join("{" + each + "}" for each in allowed))
            )
    return text


class BannerTexts:
    """The banner's three texts. Defaults are the runtime's own wording."""

    def __init__(self, reconnecting=None, failed=None, retry=None):
        given = {RECONNECTING: reconnecting, FAILED: failed, RETRY: retry}
        self.texts = {}
        for which in (RECONNECTING, FAILED, RETRY):
            text = given[which]
            self.texts[which] = DEFAULTS[which] if text is None else check_text(which, text)

    @classmethod
    def from_config(cls, config, defaults=None):
        """The texts a runtime config sets (keys ``banner_reconnecting``, ``banner_failed``,
        ``banner_retry``), over ``defaults`` (another BannerTexts) or the defaults."""
        base = defaults.texts if defaults is not None else DEFAULTS
        values = {}
        for which in (RECONNECTING, FAILED, RETRY):
            values[which] = config.get(CONFIG_KEYS[which], base[which])
        return cls(values[RECONNECTING], values[FAILED], values[RETRY])

    def to_config(self):
        """The texts as runtime config keys."""
        return {CONFIG_KEYS[which]: self.texts[which] for which in (RECONNECTING, FAILED, RETRY)}

    def reconnecting(self, attempt, max_attempts):
        return fill(self.texts[RECONNECTING], {"attempt": attempt, "max": max_attempts})

    def failed(self, reason, attempt, max_attempts):
        values = {"attempt": attempt, "max": max_attempts, "reason": reason or NO_REASON}
        return fill(self.texts[FAILED], values)

    def retry(self, reason, attempt, max_attempts):
        values = {"attempt": attempt, "max": max_attempts, "reason": reason or NO_REASON}
        return fill(self.texts[RETRY], values)

    def __eq__(self, other):
        return isinstance(other, BannerTexts) and self.texts == other.texts
