"""Backoff policy: defaults, per-attempt delay bounds, uniformity of the draws, invalid settings."""

import math
import random

import pytest
from djreconnect.backoff import Backoff, BackoffError
from hypothesis import given, settings
from hypothesis import strategies as st

# Upper 0.1% point of the chi-square distribution with 19 degrees of freedom
# (20 bins - 1): a correct uniform sampler exceeds it once in a thousand runs,
# and the seeds below are fixed, so the test is deterministic.
CHI2_CRITICAL_19_DOF_P999 = 43.82
BINS = 20
DRAWS = 10_000


def spec_bounds(min_ms, base_ms, cap_ms, attempt):
    """The interval the spec gives for attempt ``attempt``: [min, max(min, min(base*2^(n-1), cap))].

    Exact integer arithmetic for int settings (2**(n-1) as a bignum), so this does
    not share the implementation's stop-doubling shortcut.
    """
    return min_ms, max(min_ms, min(base_ms * 2 ** (attempt - 1), cap_ms))


# --- defaults --------------------------------------------------------------


def test_defaults_are_the_specified_ones():
    backoff = Backoff()
    assert (backoff.min_ms, backoff.base_ms, backoff.max_ms, backoff.max_attempts) == (500, 1000, 30000, 10)


@pytest.mark.parametrize(
    "attempt, high",
    [
        (1, 1000),  # base
        (2, 2000),
        (3, 4000),
        (4, 8000),
        (5, 16000),
        (6, 30000),  # 32000 capped
        (10, 30000),
        (1000, 30000),
    ],
)
def test_default_interval_per_attempt(attempt, high):
    backoff = Backoff()
    assert backoff.ceiling(attempt) == high
    assert backoff.delay(attempt, 0.0) == 500


def test_floor_wins_when_it_is_above_the_exponential():
    backoff = Backoff(min_ms=5000, base_ms=100, max_ms=6000)
    # 100, 200, ... 3200 are all below the floor: the interval collapses to [5000, 5000].
    for attempt in range(1, 7):
        assert backoff.ceiling(attempt) == 5000
        assert backoff.delay(attempt, 0.999) == 5000
    # 6400 is capped at 6000.
    assert backoff.ceiling(7) == 6000


def test_delay_is_the_uniform_draw_mapped_onto_the_interval():
    backoff = Backoff(min_ms=500, base_ms=1000, max_ms=30000)
    # Attempt 3: [500, 4000]. The draw picks the point at that fraction of the interval.
    assert backoff.delay(3, 0.0) == 500
    assert backoff.delay(3, 0.5) == pytest.approx(2250)
    assert backoff.delay(3, 0.25) == pytest.approx(1375)
    assert 3999 < backoff.delay(3, 0.9999999) <= 4000


# --- bounds, for any settings ----------------------------------------------------

ms = st.integers(min_value=0, max_value=10**7)


@st.composite
def backoff_settings(draw):
    min_ms = draw(ms)
    cap_ms = draw(st.integers(min_value=min_ms, max_value=min_ms + 10**7))
    base_ms = draw(ms)
    return min_ms, base_ms, cap_ms


@settings(max_examples=200, deadline=None)
@given(
    backoff_settings(),
    st.integers(min_value=1, max_value=5000),
    st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
)
def test_every_delay_is_inside_its_attempts_interval(values, attempt, unit):
    min_ms, base_ms, cap_ms = values
    backoff = Backoff(min_ms=min_ms, base_ms=base_ms, max_ms=cap_ms, max_attempts=10)
    low, high = spec_bounds(min_ms, base_ms, cap_ms, attempt)
    assert backoff.ceiling(attempt) == high
    delay = backoff.delay(attempt, unit)
    assert low <= delay <= high
    assert not math.isnan(delay)


@settings(max_examples=100, deadline=None)
@given(backoff_settings(), st.integers(min_value=1, max_value=200))
def test_intervals_never_shrink_from_one_attempt_to_the_next(values, attempt):
    min_ms, base_ms, cap_ms = values
    backoff = Backoff(min_ms=min_ms, base_ms=base_ms, max_ms=cap_ms)
    assert backoff.ceiling(attempt) <= backoff.ceiling(attempt + 1) <= max(min_ms, cap_ms)


@settings(max_examples=100, deadline=None)
@given(
    st.floats(min_value=0, max_value=1e6),
    st.floats(min_value=0, max_value=1e6),
    st.floats(min_value=0, max_value=1e6),
    st.integers(min_value=1, max_value=60),
    st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
)
def test_float_settings_stay_in_bounds(min_ms, base_ms, extra, attempt, unit):
    cap_ms = min_ms + extra
    backoff = Backoff(min_ms=min_ms, base_ms=base_ms, max_ms=cap_ms)
    high = max(min_ms, min(base_ms * 2.0 ** (attempt - 1), cap_ms))
    delay = backoff.delay(attempt, unit)
    assert min_ms <= delay <= high * (1 + 1e-12)


# --- the draws are uniform ----------------------------------------------------


@pytest.mark.parametrize("attempt", range(1, 11))
def test_draws_are_uniform_over_the_interval(attempt):
    backoff = Backoff()
    low, high = spec_bounds(500, 1000, 30000, attempt)
    rng = random.Random(20240 + attempt)
    delays = [backoff.delay(attempt, rng.random()) for _ in range(DRAWS)]

    assert all(low <= d <= high for d in delays)
    width = high - low
    counts = [0] * BINS
    for d in delays:
        counts[min(int((d - low) / width * BINS), BINS - 1)] += 1
    expected = DRAWS / BINS
    chi2 = sum((count - expected) ** 2 / expected for count in counts)
    assert chi2 < CHI2_CRITICAL_19_DOF_P999, (chi2, counts)

    # Full jitter, not "floor plus jitter": no pile-up at the low end.
    near_floor = sum(1 for d in delays if d - low < 0.01 * width) / DRAWS
    assert 0.005 <= near_floor <= 0.02, near_floor
    # ...and the draws do reach the top of the interval.
    assert max(delays) > high - 0.01 * width


def test_a_biased_source_fails_the_goodness_of_fit_test():
    """The chi-square check above can fail: a source squared towards 0 is caught."""
    backoff = Backoff()
    rng = random.Random(1)
    delays = [backoff.delay(4, rng.random() ** 1.2) for _ in range(DRAWS)]
    low, high = spec_bounds(500, 1000, 30000, 4)
    counts = [0] * BINS
    for d in delays:
        counts[min(int((d - low) / (high - low) * BINS), BINS - 1)] += 1
    chi2 = sum((c - DRAWS / BINS) ** 2 / (DRAWS / BINS) for c in counts)
    assert chi2 > CHI2_CRITICAL_19_DOF_P999


# --- invalid settings and inputs -------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_ms": -1},
        {"base_ms": -0.5},
        {"max_ms": -1, "min_ms": -2},
        {"min_ms": "500"},
        {"base_ms": None},
        {"max_ms": [30000]},
        {"min_ms": True},
        {"base_ms": False},
        {"min_ms": float("nan")},
        {"base_ms": float("nan")},
        {"max_ms": float("nan")},
        {"min_ms": float("inf"), "max_ms": float("inf")},
        {"base_ms": float("inf")},
        {"max_ms": float("inf")},
        {"min_ms": 1000, "max_ms": 999},
        {"max_attempts": 0},
        {"max_attempts": -3},
        {"max_attempts": 2.0},
        {"max_attempts": True},
        {"max_attempts": "10"},
    ],
)
def test_invalid_settings_raise(kwargs):
    with pytest.raises(BackoffError):
        Backoff(**kwargs)


def test_backoff_error_is_a_value_error():
    assert issubclass(BackoffError, ValueError)


@pytest.mark.parametrize("attempt", [0, -1])
def test_attempts_are_numbered_from_one(attempt):
    with pytest.raises(BackoffError):
        Backoff().ceiling(attempt)
    with pytest.raises(BackoffError):
        Backoff().delay(attempt, 0.5)


@pytest.mark.parametrize("unit", [1.0, 1.5, -0.0001, float("nan")])
def test_draws_outside_the_unit_interval_raise(unit):
    with pytest.raises(BackoffError):
        Backoff().delay(1, unit)


def test_equal_floor_and_cap_are_valid():
    backoff = Backoff(min_ms=2000, base_ms=1000, max_ms=2000, max_attempts=1)
    assert backoff.delay(1, 0.7) == 2000


def test_dict_round_trip_and_unknown_keys():
    backoff = Backoff(min_ms=100, base_ms=200, max_ms=5000, max_attempts=4)
    again = Backoff.from_dict(backoff.to_dict())
    assert again.to_dict() == {"min_ms": 100, "base_ms": 200, "max_ms": 5000, "max_attempts": 4}
    assert Backoff.from_dict({}).to_dict() == Backoff().to_dict()
    with pytest.raises(BackoffError):
        Backoff.from_dict({"min_ms": 100, "jitter": "full"})
    with pytest.raises(BackoffError):
        Backoff.from_dict({"min_ms": -100})
