"""The confidence interval of a median that `make bench` puts beside each protected/open ratio."""

from __future__ import annotations

import random

import pytest
from benchmarks.stats import median_interval


def test_twenty_values_give_the_sixth_smallest_to_the_sixth_largest() -> None:
    values = [float(v) for v in range(20, 0, -1)]  # order of arrival does not matter

    assert median_interval(values) == (6.0, 15.0)


def test_a_hundred_values_give_the_textbook_ranks() -> None:
    assert median_interval([float(v) for v in range(1, 101)]) == (40.0, 61.0)


@pytest.mark.parametrize("count", [1, 2, 5, 6])
def test_small_counts_give_their_whole_range(count: int) -> None:
    values = [float(v) for v in range(1, count + 1)]

    assert median_interval(values) == (1.0, float(count))


@pytest.mark.parametrize(
    ("count", "confidence", "interval"),
    [
        (10, 0.5, (4.0, 7.0)),
        (20, 0.99, (4.0, 17.0)),
        # Leaving out one value at each end of 4 weighs exactly 1 - 0.375 (2 x 5/16): allowed.
        (4, 0.375, (2.0, 3.0)),
        # Of 6 values at the same confidence, the 2nd smallest to the 2nd largest would leave
        # out 14/64 > 1/16: the whole range again.
        (6, 0.9375, (1.0, 6.0)),
    ],
)
def test_the_confidence_asked_decides_the_ranks(
    count: int, confidence: float, interval: tuple[float, float]
) -> None:
    values = [float(v) for v in range(1, count + 1)]

    assert median_interval(values, confidence) == interval


def test_no_values_is_an_error() -> None:
    with pytest.raises(ValueError, match="no values"):
        median_interval([])


@pytest.mark.parametrize("confidence", [0.0, 1.0, 95.0])
def test_a_confidence_outside_zero_to_one_is_an_error(confidence: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        median_interval([1.0, 2.0, 3.0], confidence)


@pytest.mark.parametrize(
    ("count", "coverage"),
    # 1 - 2 P(Binomial(n, 1/2) < j) for the interval from the j-th smallest to the j-th
    # largest value: the whole range (j = 1) for 8 values.
    [(8, 0.992), (20, 0.959), (40, 0.962)],
)
def test_the_interval_covers_the_true_median_as_often_as_it_claims(
    count: int, coverage: float
) -> None:
    rng = random.Random(20261208)
    trials = 4000
    # Skewed draws, as ratios of noisy runs are: the interval must not assume symmetry.
    covered = sum(
        low <= 1.0 <= high
        for low, high in (
            median_interval([rng.lognormvariate(0.0, 0.3) for _ in range(count)])
            for _ in range(trials)
        )
    )

    assert covered / trials == pytest.approx(coverage, abs=0.01)
