"""banner.py: the banner's words, their placeholders filled in one pass, bad texts refused."""

import pytest
from djreconnect import constants
from djreconnect.banner import BannerTexts, check_text, fill


def test_the_defaults_are_the_runtime_s_own_wording():
    texts = BannerTexts()
    assert texts.reconnecting(3, 10) == "Reconnecting... (attempt 3 of 10)"
    assert texts.failed("could not reconnect after 10 attempts", 10, 10) == (
        "Connection lost: could not reconnect after 10 attempts."
    )
    assert texts.retry("why", 10, 10) == "Try again"


def test_custom_texts_fill_their_placeholders():
    texts = BannerTexts(
        reconnecting="Verbindung wird wiederhergestellt ({attempt}/{max})",
        failed="Keine Verbindung ({attempt} von {max} Versuchen): {reason}",
        retry="Nochmal ({reason})",
    )
    assert texts.reconnecting(2, 5) == "Verbindung wird wiederhergestellt (2/5)"
    assert texts.failed("offline", 5, 5) == "Keine Verbindung (5 von 5 Versuchen): offline"
    assert texts.retry("offline", 5, 5) == "Nochmal (offline)"


@pytest.mark.parametrize(
    "template, values, expected",
    [
        ("{reason}", {"reason": "a {attempt} b"}, "a {attempt} b"),  # a value is never read again
        ("{reason}", {"reason": "{0} {} {{x}} %s"}, "{0} {} {{x}} %s"),
        ("lost: {reason}", {"reason": "}{"}, "lost: }{"),
        ("{ {attempt} }", {"attempt": 1}, "{ 1 }"),  # other braces stay
        ("{{attempt}}", {"attempt": 1}, "{1}"),
        ("{attempt", {"attempt": 1}, "{attempt"),
        ("attempt}", {"attempt": 1}, "attempt}"),
        ("{0}{}{ attempt }", {"attempt": 1}, "{0}{}{ attempt }"),
        ("{attempt}{attempt}/{max}", {"attempt": 7, "max": 9}, "77/9"),
        ("no placeholders", {"attempt": 1}, "no placeholders"),
        ("", {"attempt": 1}, ""),
    ],
)
def test_fill_replaces_known_names_only_in_one_pass(template, values, expected):
    assert fill(template, values) == expected


def test_a_reason_with_braces_shows_as_sent():
    assert BannerTexts().failed("bad {json} in {reason}", 0, 10) == "Connection lost: bad {json} in {reason}."


def test_a_missing_reason_still_reads():
    assert BannerTexts().failed("", 0, 10) == "Connection lost: no reason given."


@pytest.mark.parametrize(
    "which, text, said",
    [
        ("reconnecting", "Retrying {atempt} of {max}", "unknown placeholder {atempt}"),
        ("reconnecting", "Lost: {reason}", "unknown placeholder {reason}"),
        ("retry", "{button}", "unknown placeholder {button}"),
        ("failed", "", "non-empty string"),
        ("failed", "   ", "non-empty string"),
        ("failed", None, "non-empty string"),
        ("retry", 5, "non-empty string"),
        ("reconnecting", "x" * (constants.MAX_BANNER_TEXT + 1), "longer than"),
    ],
)
def test_bad_texts_are_refused_naming_the_setting(which, text, said):
    with pytest.raises(ValueError) as info:
        check_text(which, text)
    assert said in str(info.value)
    assert ("banner_" + which) in str(info.value)


def test_braces_that_are_not_placeholders_are_allowed():
    assert check_text("reconnecting", "{ } {0} {attempt") == "{ } {0} {attempt"


def test_config_round_trip_and_defaults_for_missing_keys():
    texts = BannerTexts(retry="Retry now")
    config = texts.to_config()
    assert config == {
        "banner_reconnecting": constants.DEFAULT_BANNER_RECONNECTING,
        "banner_failed": constants.DEFAULT_BANNER_FAILED,
        "banner_retry": "Retry now",
    }
    assert BannerTexts.from_config(config) == texts
    assert BannerTexts.from_config({}) == BannerTexts()
    assert BannerTexts.from_config({"banner_failed": None}) == BannerTexts()
    # A page's keys over the backend's texts.
    page = BannerTexts.from_config({"banner_failed": "Gone: {reason}"}, texts)
    assert page.to_config()["banner_retry"] == "Retry now"
    assert page.failed("x", 0, 1) == "Gone: x"
    with pytest.raises(ValueError, match="banner_reconnecting"):
        BannerTexts.from_config({"banner_reconnecting": ["not", "text"]})
