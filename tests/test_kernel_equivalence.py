"""The one-pass kernels and shortcuts of the simulator's small runs give exactly what the numpy
formulas they replaced give: the same bits, edge values included (a uniform on a region's cut, an
attribute past the one-byte range, a bisection that reaches neighbouring numbers). The compiled queue
waits as the discrete-event queue of simpy events it replaced (``tests/queue_events.py``)."""

from __future__ import annotations

import numpy as np

from sim import kernels
from sim.hazard import _solve_base
from sim.queue import serve_in_order
from sim.streams import RandomStreams, _mix, _source_key
from sim.targeting import auc

from .queue_events import serve_with_events


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


def test_generators_from_a_kept_seed_sequence_draw_as_fresh_ones_each_on_its_own() -> None:
    # Each stream as numpy seeds it from scratch: the seed, then the replication, source and key.
    def fresh(replication: int, source: str, *key: int) -> np.random.Generator:
        sequence = np.random.SeedSequence(entropy=20261122, spawn_key=(replication, _source_key(source), *key))
        return np.random.Generator(np.random.PCG64DXSM(sequence))

    streams = RandomStreams(20261122, 3)
    first = streams.child("acquisition", 7, 2)
    head = first.random(1000)  # the first generator used up before the second is asked for
    second = RandomStreams(20261122, 3).child("acquisition", 7, 2)
    assert np.array_equal(head, fresh(3, "acquisition", 7, 2).random(1000))
    assert np.array_equal(second.random(1000), head)  # the kept sequence carried nothing of the first's draws
    assert np.array_equal(first.random(10), fresh(3, "acquisition", 7, 2).random(1010)[1000:])
    # Another key, replication or source is another stream.
    others = [streams.child("acquisition", 7, 3), RandomStreams(20261122, 4).child("acquisition", 7, 2),
              streams.child("outages", 7, 2)]
    assert not any(np.array_equal(g.random(1000), head) for g in others)


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


def test_the_compiled_queue_waits_as_the_simpy_events_do() -> None:
    # Windows of every kind the hotline opens: callers waiting from the start (patient or not), agents
    # busy at the start (several freeing at the same moment), patient, impatient and overloaded queues,
    # a lone agent, no caller at all.
    rng = np.random.default_rng(5)
    abandoned = waited = 0
    for _ in range(400):
        agents = int(rng.integers(1, 40))
        held, calls = int(rng.integers(0, 12)) * int(rng.random() < 0.5), int(rng.integers(0, 300))
        arrivals = np.concatenate([np.zeros(held), np.sort(rng.random(calls)) * rng.uniform(1.0, 60.0)])
        service = rng.exponential(rng.uniform(0.5, 10.0), arrivals.size)
        patience = [None, rng.exponential(rng.uniform(0.1, 5.0), arrivals.size),
                    np.concatenate([np.full(held, np.inf), rng.exponential(2.0, calls)])][int(rng.integers(0, 3))]
        busy = rng.exponential(5.0, int(rng.integers(0, agents + 1)))
        busy[: busy.size // 3] = busy[:1]
        waits, gone = serve_in_order(arrivals, service, patience, agents, busy=busy)
        expected_waits, expected_gone = serve_with_events(arrivals, service, patience, agents, busy=busy)
        assert waits.tobytes() == expected_waits.tobytes()
        assert gone.tobytes() == expected_gone.tobytes()
        abandoned += int(gone.sum())
        waited += int((waits > 0).sum())
    assert abandoned > 1_000 and waited > 5_000  # the windows queued and lost callers


def test_a_whole_window_ends_as_with_the_simpy_queue(monkeypatch) -> None:
    # A window from the long-run state, with a warm-up and one opening on the state another left: the
    # same waits and the same end state (busy agents, callers still waiting) as with simpy's queue.
    import sim.queue

    def windows() -> list:
        rng = np.random.default_rng(3)
        normal = sim.queue.simulate_queue(2.4, 10, 5.0, 2.0, 300.0, rng, stationary=True)
        warmed = sim.queue.simulate_queue(2.6, 10, 5.0, None, 200.0, rng, warmup_minutes=50.0)
        burst = sim.queue.simulate_queue(4.0, 10, 5.0, 2.0, 60.0, rng, start=normal.end)
        return [normal, warmed, burst]

    compiled = windows()
    monkeypatch.setattr(sim.queue, "serve_in_order", serve_with_events)
    for got, expected in zip(compiled, windows()):
        assert got.calls > 100
        for a, b in [(got.waits, expected.waits), (got.abandoned, expected.abandoned), (got.end.busy, expected.end.busy),
                     (got.end.waiting_patience, expected.end.waiting_patience),
                     (got.end.waiting_service, expected.end.waiting_service)]:
            assert a.tobytes() == b.tobytes()
    assert compiled[0].end.busy.size > 0 and compiled[1].end.waiting_patience.size > 0
