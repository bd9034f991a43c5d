"""Full-jitter exponential backoff: how long to wait before reconnection attempt n.

Attempt n (1-based) waits a delay drawn uniformly from
[min, max(min, min(base * 2**(n-1), cap))]. The random number is passed in, so
the policy is a pure function and tests can drive it with a seeded generator.
"""

from djreconnect import constants

_INFINITY = float("inf")


class BackoffError(ValueError):
    """Backoff settings that cannot work."""


class Backoff:
    """Backoff settings and the delays they produce."""

    def __init__(
        self,
        min_ms=constants.DEFAULT_BACKOFF_MIN_MS,
        base_ms=constants.DEFAULT_BACKOFF_BASE_MS,
        max_ms=constants.DEFAULT_BACKOFF_MAX_MS,
        max_attempts=constants.DEFAULT_MAX_ATTEMPTS,
    ):
        for name, value in (("min_ms", min_ms), ("base_ms", base_ms), ("max_ms", max_ms)):
            # Written so that NaN fails too; an infinite delay is no delay to setTimeout.
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < _INFINITY:
                raise BackoffError("%s must be a finite number >= 0, not %r" % (name, value))
        if not isinstance(max_attempts, int) or isinstance(max_attempts, bool) or max_attempts < 1:
            raise BackoffError("max_attempts must be an integer >= 1, not %r" % (max_attempts,))
        if max_ms < min_ms:
            raise BackoffError("max_ms (%r) must not be below min_ms (%r)" % (max_ms, min_ms))
        self.min_ms = min_ms
        self.base_ms = base_ms
        self.max_ms = max_ms
        self.max_attempts = max_attempts

    def ceiling(self, attempt):
        """The upper end of attempt ``attempt``'s delay interval, in ms."""
        if attempt < 1:
            raise BackoffError("attempts are numbered from 1")
        # Stop doubling once past the cap: 2**1000 would be a waste of a bignum.
        exponential = self.base_ms
        for _ in range(attempt - 1):
            if exponential >= self.max_ms:
                break
            exponential *= 2
        return max(self.min_ms, min(exponential, self.max_ms))

    def delay(self, attempt, unit):
        """The delay before attempt ``attempt`` for a uniform draw ``unit`` in [0, 1)."""
        if not 0 <= unit < 1:
            raise BackoffError("unit must be in [0, 1), not %r" % (unit,))
        low = self.min_ms
        return low + unit * (self.ceiling(attempt) - low)

    def to_dict(self):
        return {
            "min_ms": self.min_ms,
            "base_ms": self.base_ms,
            "max_ms": self.max_ms,
            "max_attempts": self.max_attempts,
        }

    @classmethod
    def from_dict(cls, values):
        known = ("min_ms", "base_ms", "max_ms", "max_attempts")
        for key in values:
            if key not in known:
                raise BackoffError("unknown backoff setting %r" % (key,))
        return cls(**values)
