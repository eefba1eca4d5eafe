"""The Playground sets against their formulas, point by point where the formula allows it and by
sample statistics elsewhere, with tolerances of five standard errors, which shrink as the sample grows.

Each test draws enough points that changing one constant of a formula (a centre, a radius, a turn
count, a spread) moves a statistic by many times its tolerance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from beanstrain.data import generate

SAMPLES = 40_000


def within(value, expected, standard_error):
    """`value` is within five standard errors of `expected`."""
    return abs(value - expected) < 5 * standard_error


def share_within(share, expected, samples):
    return within(share, expected, math.sqrt(expected * (1 - expected) / samples))


def uniform_within(values, low, high):
    """Drawn from U(low, high): inside it, with its mean and variance."""
    width = high - low
    standard_deviation = width / math.sqrt(12)
    return (values.min() >= low and values.max() <= high
            and within(values.mean(), (low + high) / 2, standard_deviation / math.sqrt(values.size))
            # the variance of a uniform's square deviation is width^4 / 180
            and within(values.var(), width**2 / 12, width**2 / math.sqrt(180 * values.size)))


def test_xor_points_and_the_quadrant_rule():
    """Each coordinate is U(-5, 5) pushed 0.3 away from the axis; class 1 when both have the same sign."""
    x, y = generate("xor", SAMPLES, 0.0, seed=1)
    np.testing.assert_array_equal(y, (x[:, 0] * x[:, 1] >= 0).astype(np.float32))
    for coordinate in x.T.astype(np.float64):
        assert uniform_within(np.abs(coordinate) - 0.3, -1e-6, 5.0 + 1e-6)
        assert share_within(np.mean(coordinate > 0), 0.5, SAMPLES)
    assert share_within(y.mean(), 0.5, SAMPLES)


@pytest.mark.parametrize("noise", [0.1, 0.5])
def test_xor_noise_jitters_the_point_used_for_the_label(noise):
    """A coordinate at distance m ~ U(0.3, 5.3) from its axis changes sign under a jitter U(-w, w),
    w = 5 * noise, with probability max(0, w - m) / 2w; the label changes when one coordinate does."""
    x, y = generate("xor", SAMPLES, noise, seed=2)
    half_width = 5 * noise
    distances = np.linspace(0.3, 5.3, 100_001)
    one_flips = np.mean(np.maximum(0.0, half_width - distances) / (2 * half_width))
    expected = 2 * one_flips * (1 - one_flips)
    changed = np.mean(y != (x[:, 0] * x[:, 1] >= 0))
    assert share_within(changed, expected, SAMPLES)


@pytest.mark.parametrize("noise", [0.0, 0.1])
def test_gauss_centres_and_spread(noise):
    """Class 1 around (2, 2), class 0 around (-2, -2), each coordinate normal with variance 0.5 + 7 * noise."""
    x, y = generate("gauss", SAMPLES, noise, seed=3)
    variance = 0.5 + 7 * noise
    np.testing.assert_array_equal(y, np.repeat([1.0, 0.0], SAMPLES // 2))
    for label, centre in ((1.0, 2.0), (0.0, -2.0)):
        cloud = x[y == label].astype(np.float64)
        count = len(cloud)
        assert count == SAMPLES // 2
        for coordinate in cloud.T:
            assert within(coordinate.mean(), centre, math.sqrt(variance / count))
            assert within(coordinate.var(ddof=1), variance, variance * math.sqrt(2 / (count - 1)))
            # normal: 68.27% of the points within one standard deviation of the centre
            assert share_within(np.mean(np.abs(coordinate - centre) < math.sqrt(variance)), 0.6827, count)
        assert within(np.corrcoef(cloud.T)[0, 1], 0.0, 1 / math.sqrt(count))


@pytest.mark.parametrize("noise, jitter", [(0.0, 0.1), (0.02, 0.02)], ids=["course-jitter", "small-jitter"])
def test_spiral_radius_and_angle_of_every_point(noise, jitter):
    """Point i of k in each arm: radius 5i/k, angle 1.75 * (i/k) * 2pi (+ pi for class 0), plus a jitter
    U(-jitter, jitter) on each coordinate, 0.1 unless --noise gives it."""
    samples = 4000
    per_arm = samples // 2
    x, y = generate("spiral", samples, noise, seed=4)
    step = np.arange(per_arm) / per_arm
    radius = 5 * step
    offsets = []
    for arm, (delta, label) in enumerate(((0.0, 1.0), (math.pi, 0.0))):
        angle = 1.75 * step * 2 * math.pi + delta
        ideal = np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1)
        points = x[arm * per_arm:(arm + 1) * per_arm].astype(np.float64)
        np.testing.assert_array_equal(y[arm * per_arm:(arm + 1) * per_arm], label)
        offsets.append(points - ideal)
    offsets = np.concatenate(offsets)
    assert uniform_within(offsets, -jitter - 1e-6, jitter + 1e-6)


def test_circle_radius_and_angle():
    """Half the points at r ~ U(0, 0.5), half at r ~ U(0.7, 1), angle ~ U(0, 2pi), centred on (1, 1)."""
    x, _ = generate("circle", SAMPLES, 0.0, seed=5)
    offsets = x.astype(np.float64) - 1.0
    radius = np.linalg.norm(offsets, axis=1)
    half = SAMPLES // 2
    assert uniform_within(radius[:half], -1e-6, 0.5 + 1e-6)
    assert uniform_within(radius[half:], 0.7 - 1e-6, 1.0 + 1e-6)
    assert uniform_within(np.arctan2(offsets[:, 0], offsets[:, 1]), -math.pi, math.pi)
