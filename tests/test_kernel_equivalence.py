"""The one-pass kernels and shortcuts of the simulator's small runs give exactly what the numpy
formulas they replaced give: the same bits, edge values included (a uniform on a region's cut, an
attribute past the one-byte range, a bisection that reaches neighbouring numbers)."""

from __future__ import annotations

import numpy as np

from sim import kernels
from sim.hazard import _solve_base
from sim.streams import RandomStreams, _mix, _source_key
from sim.targeting import auc


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def test_keyed_uniforms_are_the_numpy_hash_of_each_unit() -> None:
    streams = RandomStreams(20261122, 3)
    units = np.array([0, 1, 7, 2**31 - 1, 123_456], dtype=np.int32)
    salt = _mix(np.uint64(20261122), 3, _source_key("offers"), 5, 9)
    with np.errstate(over="ignore"):
        bits = _splitmix64(units.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + salt)
    expected = (bits >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    got = streams.unit_uniforms("offers", units, 5, 9)
    assert got.tobytes() == expected.tobytes()
    # Strided and wider inputs: the same draws per unit.
    wide = np.arange(20, dtype=np.int64)[::4]
    assert streams.unit_uniforms("offers", wide, 5, 9).tobytes() == \
        streams.unit_uniforms("offers", wide.astype(np.int32).copy(), 5, 9).tobytes()
    assert streams.salt("offers", 5, 9) == salt  # kept or mixed anew, one salt


def test_new_units_regions_and_byte_attributes_match_numpy() -> None:
    rng = np.random.default_rng(11)
    shares = np.array([0.2, 0.5, 0.0, 0.3])
    cuts = np.cumsum(shares) / np.sum(shares)
    u = np.concatenate([rng.random(500), cuts, [0.0, np.nextafter(1.0, 0.0)]])  # on every cut
    expected = np.sort(np.minimum(np.searchsorted(cuts, u, side="right"), len(shares) - 1)).astype(np.uint8)
    assert kernels.sorted_regions(u, cuts).tobytes() == expected.tobytes()
    for spread in (1.0, 0.7, 6.0):  # 6.0 pushes the tails past the one-byte range
        v = np.concatenate([rng.random(500), [1e-15, 0.5, 1.0 - 1e-15]])
        numpy_steps = np.clip(np.rint(kernels.normal_quantile(v) * spread / (1 / 32)), -127, 127).astype(np.int8)
        got = kernels.normal_steps(v, spread, 1 / 32)
        assert got.tobytes() == numpy_steps.tobytes()
        assert spread < 6.0 or {-127, 127} <= set(got.tolist())


def test_the_first_guess_bisection_ends_where_eighty_steps_end() -> None:
    rng = np.random.default_rng(5)

    def eighty_steps(offsets: np.ndarray, target: float) -> float:
        low, high = -30.0, 30.0
        for _ in range(80):
            mid = 0.5 * (low + high)
            if float(np.mean(1.0 / (1.0 + np.exp(-(mid + offsets))))) < target:
                low = mid
            else:
                high = mid
        return 0.5 * (low + high)

    for target in (0.004, 0.0166, 0.05, 0.3):
        offsets = rng.normal(-1.0, 1.5, 20_000).astype(np.float32).astype(np.float64)
        assert _solve_base(offsets, target) == eighty_steps(offsets, target)


def test_auc_without_ties_is_the_mann_whitney_count() -> None:
    rng = np.random.default_rng(8)
    scores = rng.normal(size=400)
    positives = rng.random(400) < 0.3
    pos, neg = scores[positives], scores[~positives]
    pairs = float((pos[:, None] > neg[None, :]).sum()) / (pos.size * neg.size)
    assert auc(scores, positives) == pairs  # exact: the rank sums are integers
    tied = np.round(scores, 0)  # ties counted half
    pos, neg = tied[positives], tied[~positives]
    half = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (pos.size * neg.size)
    assert abs(auc(tied, positives) - half) < 1e-12
