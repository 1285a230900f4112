"""How far a median of noisy runs can be trusted."""

from __future__ import annotations

import math
from collections.abc import Sequence

#: The confidence of the intervals ``make bench`` prints.
CONFIDENCE = 0.95


def median_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """A confidence interval for the median of the population ``values`` were drawn from.

    Distribution-free (the sign test's interval): the true median lies below the ``j``-th
    smallest of ``n`` values only if at most ``j - 1`` of them fall below it, which happens
    with the probability of a Binomial(n, 1/2) count of at most ``j - 1``. The interval runs
    from the ``j``-th smallest to the ``j``-th largest value, for the largest ``j`` whose two
    tails together stay within ``1 - confidence``: with 20 values at 95 %, the 6th smallest
    to the 6th largest (coverage 95.9 %). With too few values for any such ``j`` (5 or fewer
    at 95 %), the interval is their whole range, which then covers less than asked.
    """
    if not values:
        raise ValueError("no values")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie between 0 and 1, not {confidence}")
    ordered = sorted(values)
    count = len(ordered)
    tail = (1 - confidence) / 2
    beyond = 0  # how many values the interval leaves out at each end
    below = 0.0
    for candidate in range(count):
        below += math.comb(count, candidate) / 2**count  # P(count below the median <= candidate)
        if below > tail or candidate > count - 1 - candidate:
            break
        beyond = candidate
    return ordered[beyond], ordered[count - 1 - beyond]
