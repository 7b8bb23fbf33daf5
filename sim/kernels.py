"""The per-row passes of a month, compiled (numba): one loop per pass instead of a chain of numpy calls.

Each loop reads a unit's few bytes once, keeps its arithmetic in registers and writes only what
the pass changes; numpy would allocate or stream a temporary per operation. Everything that is
drawn per unit comes from a hash of (the stream's salt, the unit's ``uid``): the same line draws
the same number whatever row it sits in and whoever else is still with us, which is what lets the
engine drop churned rows (:meth:`sim.subscribers.TierState.compact`) under common random numbers.

The hash is splitmix64 of ``uid * golden + salt`` (:func:`unit_bits`); the salts come from
:meth:`sim.streams.RandomStreams.salt`.

Every function is compiled on first use and cached on disk (``cache=True``): a new process loads
the machine code instead of compiling it again.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_U64 = np.uint64
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_F32_UNIT = np.float32(1.0 / (1 << 24))
_F64_UNIT = 1.0 / (1 << 53)

LOGIT_COEFFICIENTS = 8
"""Length of the ``coef`` vector of a tier's logit: scalar part, -satisfaction, out of contract,
-tenure per month, propensity step, complaints per line, the earliest join month whose tenure
counts in full (loyalty stops growing after ``tenure.loyalty_months``), and the term added while the
contract runs (an enterprise account deciding at renewal only; see
:func:`sim.hazard.logit_coefficients`)."""


@njit(inline="always", cache=True)
def unit_bits(salt: np.uint64, uid: int) -> np.uint64:
    """64 random bits for unit ``uid`` of the stream ``salt`` (splitmix64, as in :mod:`sim.streams`)."""
    x = _U64(uid) * _GOLDEN + salt + _GOLDEN
    x = (x ^ (x >> _U64(30))) * _M1
    x = (x ^ (x >> _U64(27))) * _M2
    return x ^ (x >> _U64(31))


@njit(inline="always", cache=True)
def uniform32(bits: np.uint64) -> np.float32:
    """A float32 uniform in [0, 1) from the top 24 bits."""
    # Through int64: x86 converts signed integers to floats in one instruction, unsigned ones not.
    return np.float32(np.int64(bits >> _U64(40))) * _F32_UNIT


@njit(inline="always", cache=True)
def uniform64(bits: np.uint64) -> float:
    """A float64 uniform in [0, 1) from the top 53 bits (as :meth:`RandomStreams.unit_uniforms`)."""
    return float(np.int64(bits >> _U64(11))) * _F64_UNIT


@njit(cache=True)
def keyed_uniforms(units: np.ndarray, salt: np.uint64) -> np.ndarray:
    """A float64 uniform per unit of the stream ``salt``: :meth:`sim.streams.RandomStreams.unit_uniforms`,
    in one pass (a month's offers and save-desk calls ask for a few dozen at a time)."""
    out = np.empty(units.size)
    for i in range(units.size):
        out[i] = uniform64(unit_bits(salt, units[i]))
    return out


SMALL_TABLE = 8
"""Look-up tables (region terms, lever log-odds) of at most this many entries are read as a chain of
selects on the code instead of an indexed load: the loops then vectorize (a gather per row kept them
scalar, at twice the time). Larger tables take the indexed load."""


@njit(inline="always", cache=True)
def _small(table):
    """``table`` as a tuple of ``SMALL_TABLE`` float32 numbers (zeros past its end), held in registers."""
    p = np.zeros(SMALL_TABLE, np.float32)
    p[:table.size] = table
    return (p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7])


@njit(inline="always", cache=True)
def _pick(t, k):
    """``t[k]`` of a :func:`_small` table, branch-free: the same number as the indexed load."""
    v = t[0]
    v = t[1] if k == 1 else v
    v = t[2] if k == 2 else v
    v = t[3] if k == 3 else v
    v = t[4] if k == 4 else v
    v = t[5] if k == 5 else v
    v = t[6] if k == 6 else v
    v = t[7] if k == 7 else v
    return v


@njit(inline="always", cache=True)
def _dense_terms(i, month, satisfaction, region_term, contract_end, join_month, propensity, coef):
    # Branch-free (a comparison times its coefficient), so that the loops vectorize.
    x = satisfaction[i] * coef[1] + region_term
    x += np.float32(contract_end[i] <= month) * coef[2]
    x += np.float32(contract_end[i] > month) * coef[7]
    x += max(np.float32(join_month[i]), coef[6]) * coef[3]
    x += np.float32(propensity[i]) * coef[4]
    return x + coef[0]


@njit(inline="always", cache=True)
def _dense_logit(i, month, satisfaction, region, contract_end, join_month, propensity, by_region, coef):
    return _dense_terms(i, month, satisfaction, by_region[region[i]], contract_end, join_month, propensity, coef)


@njit(inline="always", cache=True)
def _coefficients(coef):
    """``coef`` as a tuple, held in registers (the loops write float32 arrays, which could alias it)."""
    return (coef[0], coef[1], coef[2], coef[3], coef[4], coef[5], coef[6], coef[7])


SAVE_FLAG = np.uint8(128)
"""The top bit of ``effect_lever``: the running offer was a save-desk acceptance (its months are
counted from the month after the save). The low seven bits are the lever's number."""
LEVER_BITS = np.uint8(127)


@njit(inline="always", cache=True)
def _running(i, month, effect_until, effect_lever, levers):
    """Row ``i``'s running offer's log-odds (0 when none runs), from a :func:`_small` table."""
    return _pick(levers, effect_lever[i] & LEVER_BITS) * np.float32(effect_until[i] >= month)


@njit(inline="always", cache=True)
def _running_indexed(i, month, effect_until, effect_lever, lever_log_odds):
    return lever_log_odds[effect_lever[i] & LEVER_BITS] * np.float32(effect_until[i] >= month)


@njit(cache=True)
def logit_rows(out, n, month, satisfaction, region, contract_end, join_month, propensity, by_region, coef,
               complaints, effect_until, effect_lever, lever_log_odds, sparse):
    """The logit of rows ``[0, n)`` into ``out``; with ``sparse``, also the complaints and running offers
    (dense per row here: a loop pays nothing for the rows they leave alone)."""
    c = _coefficients(coef)
    if by_region.size <= SMALL_TABLE and lever_log_odds.size <= SMALL_TABLE:
        regions, levers = _small(by_region), _small(lever_log_odds)
        for i in range(n):
            x = _dense_terms(i, month, satisfaction, _pick(regions, region[i]), contract_end, join_month,
                             propensity, c)
            if sparse:
                x += c[5] * np.float32(complaints[i])
                x += _running(i, month, effect_until, effect_lever, levers)
            out[i] = x
        return
    for i in range(n):
        x = _dense_logit(i, month, satisfaction, region, contract_end, join_month, propensity, by_region, c)
        if sparse:
            x += c[5] * np.float32(complaints[i])
            x += _running_indexed(i, month, effect_until, effect_lever, lever_log_odds)
        out[i] = x


BLOCK = 1 << 14
"""Rows per block in passes that draw into a fixed mask buffer, then list the block's finds."""


@njit(cache=True)
def churn_mask(mask, probability, status, uid, salt):
    """``mask``: the active units whose keyed uniform falls below their churn probability.

    Branch-free, so that the hash vectorizes (64-bit multiplies in SIMD lanes); numpy's ``flatnonzero``
    then lists the few leavers. One loop that branched on ``status`` and collected rows as it went
    ran at a third of the speed.
    """
    for i in range(probability.size):
        mask[i] = (status[i] == 0) & (uniform32(unit_bits(salt, uid[i])) < probability[i])


@njit(cache=True, fastmath={"reassoc"})
def active_sums(probability, status, satisfaction):
    """The active units' probability sum, count and satisfaction sum. Reassociating the sums lets
    them run in SIMD lanes: a single running sum waits on each add's latency."""
    expected, total_satisfaction, active = 0.0, 0.0, 0
    for i in range(probability.size):
        on = status[i] == 0
        expected += probability[i] * on
        total_satisfaction += satisfaction[i] * on
        active += on
    return expected, active, total_satisfaction


def churn_draws(probability: np.ndarray, status: np.ndarray, satisfaction: np.ndarray, uid: np.ndarray,
                salt: np.uint64) -> tuple[np.ndarray, float, int, float]:
    """Churn decisions from the month's probabilities: one keyed uniform per active unit.

    Returns the leaving rows, the sum of the active units' probabilities, their count and their
    satisfaction sum.
    """
    n = probability.size
    mask = np.empty(n, dtype=np.bool_)
    churn_mask(mask, probability, status[:n], uid[:n], salt)
    leaving = np.flatnonzero(mask)
    del mask
    expected, active, total_satisfaction = active_sums(probability, status[:n], satisfaction[:n])
    return leaving, float(expected), int(active), float(total_satisfaction)


@njit(cache=True)
def scores_at(rows, month, satisfaction, region, contract_end, join_month, propensity, by_region, coef,
              effect_until, effect_lever, lever_log_odds, model_error, use_logit, blur):
    """The churn model's score of ``rows``: the logit with the running offer (when ``use_logit``) plus
    its error times ``blur``. The model knows who is on an offer: a covered line looks less at risk."""
    out = np.empty(rows.size, np.float32)
    for j in range(rows.size):
        i = rows[j]
        x = np.float32(0.0)
        if use_logit:
            x = _dense_logit(i, month, satisfaction, region, contract_end, join_month, propensity, by_region, coef)
            x += _running_indexed(i, month, effect_until, effect_lever, lever_log_odds)
        out[j] = x + np.float32(model_error[i]) * blur
    return out


NO_OFFER = np.float32(-1.0)
"""The strength of no running offer: below every lever's, even one that cuts the hazard by nothing."""


@njit(inline="always", cache=True)
def _strength(i, month, effect_until, effect_lever, cuts):
    """Row ``i``'s running offer's strength: its hazard reduction (:data:`NO_OFFER` when none runs)."""
    running = np.float32(effect_until[i] >= month)
    return NO_OFFER + (_pick(cuts, effect_lever[i] & LEVER_BITS) - NO_OFFER) * running


@njit(inline="always", cache=True)
def _strength_indexed(i, month, effect_until, effect_lever, lever_cuts):
    running = np.float32(effect_until[i] >= month)
    return NO_OFFER + (lever_cuts[effect_lever[i] & LEVER_BITS] - NO_OFFER) * running


@njit(cache=True)
def running_strength(rows, month, effect_until, effect_lever, lever_cuts):
    """Per row: the hazard reduction of the offer it is on (:data:`NO_OFFER` for none)."""
    out = np.empty(rows.size, np.float32)
    for j in range(rows.size):
        out[j] = _strength_indexed(rows[j], month, effect_until, effect_lever, lever_cuts)
    return out


@njit(inline="always", cache=True)
def _offerable(i, status, last_offer, offered_by, strength, most):
    """Whether row ``i`` may get an offer: an active unit whose last offer came by month ``offered_by``
    and whose running offer (``strength``, see :func:`_strength`) is weaker than the strongest offer on
    the table (``most``)."""
    return (status[i] == 0) & (last_offer[i] <= offered_by) & (strength < most)


@njit(cache=True)
def score_mask(mask, threshold, n, status, last_offer, offered_by, most, lever_cuts, month, satisfaction, region,
               contract_end, join_month, propensity, by_region, coef, effect_until, effect_lever, lever_log_odds,
               model_error, use_logit, blur):
    """``mask[:n]``: the rows that may get an offer (:func:`_offerable`) and whose score (as
    :func:`scores_at`) is at least ``threshold``. Branch-free: every row is scored, so the loop vectorizes
    (one loop per case, none branching inside)."""
    c = _coefficients(coef)
    if by_region.size <= SMALL_TABLE and lever_log_odds.size <= SMALL_TABLE:
        regions, levers, cuts = _small(by_region), _small(lever_log_odds), _small(lever_cuts)
        if not use_logit:
            for i in range(n):
                strength = _strength(i, month, effect_until, effect_lever, cuts)
                score = np.float32(model_error[i]) * blur
                mask[i] = _offerable(i, status, last_offer, offered_by, strength, most) & (score >= threshold)
            return
        for i in range(n):
            x = _dense_terms(i, month, satisfaction, _pick(regions, region[i]), contract_end, join_month, propensity, c)
            x += _running(i, month, effect_until, effect_lever, levers)
            strength = _strength(i, month, effect_until, effect_lever, cuts)
            score = x + np.float32(model_error[i]) * blur
            mask[i] = _offerable(i, status, last_offer, offered_by, strength, most) & (score >= threshold)
        return
    for i in range(n):
        x = np.float32(0.0)
        if use_logit:
            x = _dense_logit(i, month, satisfaction, region, contract_end, join_month, propensity, by_region, c)
            x += _running_indexed(i, month, effect_until, effect_lever, lever_log_odds)
        score = x + np.float32(model_error[i]) * blur
        strength = _strength_indexed(i, month, effect_until, effect_lever, lever_cuts)
        mask[i] = _offerable(i, status, last_offer, offered_by, strength, most) & (score >= threshold)


@njit(cache=True)
def offerable_rows(n, status, last_offer, offered_by, most, lever_cuts, month, effect_until, effect_lever):
    """Every row below ``n`` that may get an offer (:func:`_offerable`)."""
    rows = np.empty(n, np.int64)
    count = 0
    for i in range(n):
        strength = _strength_indexed(i, month, effect_until, effect_lever, lever_cuts)
        rows[count] = i
        count += _offerable(i, status, last_offer, offered_by, strength, most)
    return rows[:count].copy()


@njit(cache=True)
def tie_bits(rows, uid, salt):
    """The high 32 bits of each row's unit's keyed hash (stream ``salt``), as uint32."""
    out = np.empty(rows.size, np.uint32)
    for j in range(rows.size):
        out[j] = np.uint32(unit_bits(salt, uid[rows[j]]) >> _U64(32))
    return out


@njit(cache=True)
def sample_scores(stride, n, status, last_offer, offered_by, most, lever_cuts, month, satisfaction, region,
                  contract_end, join_month, propensity, by_region, coef, effect_until, effect_lever, lever_log_odds,
                  model_error, use_logit, blur):
    """The rows ``0, stride, 2 * stride, ...`` below ``n`` that may get an offer, and their scores (as
    :func:`scores_at`), in one pass."""
    size = (n + stride - 1) // stride
    rows = np.empty(size, np.int64)
    scores = np.empty(size, np.float32)
    c = _coefficients(coef)
    count = 0
    if by_region.size <= SMALL_TABLE and lever_log_odds.size <= SMALL_TABLE:
        regions, levers, cuts = _small(by_region), _small(lever_log_odds), _small(lever_cuts)
        for i in range(0, n, stride):
            x = np.float32(0.0)
            if use_logit:
                x = _dense_terms(i, month, satisfaction, _pick(regions, region[i]), contract_end, join_month,
                                 propensity, c) + _running(i, month, effect_until, effect_lever, levers)
            rows[count] = i
            scores[count] = x + np.float32(model_error[i]) * blur
            count += _offerable(i, status, last_offer, offered_by, _strength(i, month, effect_until, effect_lever,
                                                                             cuts), most)
        return rows[:count].copy(), scores[:count].copy()
    for i in range(0, n, stride):
        x = np.float32(0.0)
        if use_logit:
            x = _dense_logit(i, month, satisfaction, region, contract_end, join_month, propensity, by_region, c)
            x += _running_indexed(i, month, effect_until, effect_lever, lever_log_odds)
        rows[count] = i
        scores[count] = x + np.float32(model_error[i]) * blur
        count += _offerable(i, status, last_offer, offered_by,
                            _strength_indexed(i, month, effect_until, effect_lever, lever_cuts), most)
    return rows[:count].copy(), scores[:count].copy()


POISSON_PART_MEAN = 16.0
"""Larger means are drawn as a sum of Poisson parts of at most this mean (a sum of independent
Poisson counts is Poisson): the inverse CDF stays exact where exp(-mean) would underflow."""


@njit(cache=True)
def _poisson_parts(mean):
    parts = max(1, int(math.ceil(mean / POISSON_PART_MEAN)))
    return parts, mean / parts


@njit(cache=True)
def _poisson_cdf(part_mean):
    """P(count <= k) for k = 0 .. most - 1 of one Poisson part; beyond ``most`` the tail is below 1e-6
    and the count stops there."""
    most = max(3, int(part_mean + 6.0 * math.sqrt(part_mean) + 3.0))
    cdf = np.empty(most, np.float64)
    term = math.exp(-part_mean)
    cdf[0] = term
    for k in range(1, most):
        term *= part_mean / k
        cdf[k] = cdf[k - 1] + term
    return cdf


@njit(inline="always", cache=True)
def _small64(table):
    """``table`` as a tuple of ``SMALL_TABLE`` float64 numbers, padded with 2.0 (above any uniform)."""
    p = np.full(SMALL_TABLE, 2.0)
    p[:table.size] = table
    return (p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7])


@njit(inline="always", cache=True)
def _count_below(u, t):
    """How many of the :func:`_small64` table's entries ``u`` reaches: the inverse CDF, branch-free."""
    return (np.int32(u >= t[0]) + np.int32(u >= t[1]) + np.int32(u >= t[2]) + np.int32(u >= t[3])
            + np.int32(u >= t[4]) + np.int32(u >= t[5]) + np.int32(u >= t[6]) + np.int32(u >= t[7]))


@njit(cache=True)
def call_counts(counts, calling, n, status, uid, salt, mean):
    """``counts[:n]``: each active unit's Poisson(``mean``) calls this month, ``calling[:n]`` whether it
    calls at all (numpy lists the rows of a boolean mask at a fraction of the cost of counts'); returns
    their sum.

    The count is the inverse CDF of one keyed uniform per unit and Poisson part: the number of the
    CDF's steps the uniform reaches. With one part and a short table that is a sum of comparisons, so
    the loop vectorizes (most units do not call, and a branch per unit ran at a third of the speed).
    """
    parts, part_mean = _poisson_parts(mean)
    cdf = _poisson_cdf(part_mean)
    total = 0
    if parts == 1 and cdf.size <= SMALL_TABLE:
        t = _small64(cdf)
        for i in range(n):
            c = _count_below(uniform64(unit_bits(salt, uid[i])), t) * np.int32(status[i] == 0)
            counts[i] = c
            calling[i] = c > 0
            total += c
        return total
    for i in range(n):
        c = 0
        if status[i] == 0:
            for part in range(parts):
                u = uniform64(unit_bits(salt, np.int64(uid[i]) * parts + part))
                k = 0
                while k < cdf.size and u >= cdf[k]:
                    k += 1
                c += k
        counts[i] = c
        calling[i] = c > 0
        total += c
    return total


@njit(cache=True)
def settle_calls(units, counts, uid, salts, waits, abandoned, offsets, time_salt, burst_share, satisfaction,
                 complaints, complaint_cut, abandoned_cut, per_minute, abandoned_loss, complaint_loss,
                 lines_per_unit, target):
    """Each call takes the outcome of a simulated call of its regime, and what it does to the caller:
    satisfaction lost to waiting, hanging up and complaining; complaints counted.

    Unit ``units[j]`` made ``counts[units[j]]`` calls (one call when ``counts`` is empty). Regime ``r``
    has the simulated calls ``offsets[r]:offsets[r + 1]`` of ``waits`` and ``abandoned`` and its own
    stream ``salts[r]``. A call is in regime 0 (the normal load), unless a keyed uniform of its caller
    (stream ``time_salt``) falls below ``burst_share``: it then came in during one of the other regimes
    (the outage bursts, evenly). Calls of a regime with no simulated call are not settled. Per call,
    one hash: its high 32 bits pick the simulated call, its low 32 bits decide the complaint. Returns
    the complainers and the totals (calls settled, answered within ``target``, abandoned, complaints,
    minutes waited).
    """
    bursts = salts.size - 1
    counted = counts.size > 0
    total = 0
    for j in range(units.size):
        total += counts[units[j]] if counted else 1
    complainers = np.empty(total, np.int64)
    settled, count, logged, in_target, gone_count = 0, 0, 0, 0, 0
    wait_sum = 0.0
    for j in range(units.size):
        i = units[j]
        r = 0
        if burst_share > 0.0:
            when = uniform64(unit_bits(time_salt, uid[i]))
            if when < burst_share:
                r = 1 + min(int(when / burst_share * bursts), bursts - 1)
        calls = offsets[r + 1] - offsets[r]
        if calls == 0:
            continue
        bits = unit_bits(salts[r], uid[i])
        pick = offsets[r] + np.int64(((bits >> _U64(32)) * _U64(calls)) >> _U64(32))
        wait = waits[pick]
        gone = abandoned[pick]
        low = bits & _U64(0xFFFFFFFF)
        complaint = low < (abandoned_cut if gone else complaint_cut)
        loss = np.float32((per_minute * wait + abandoned_loss * gone + complaint_loss * complaint) / lines_per_unit)
        # A unit's calls are keyed by the unit: each of them meets the same outcome.
        for _ in range(counts[i] if counted else 1):
            # Clipped at each call rather than once at the end: the same result, as losses only lower it.
            satisfaction[i] = min(max(satisfaction[i] - loss, np.float32(0.0)), np.float32(1.0))
            settled += 1
            if complaint:
                # A large account can complain more than a byte counts: the counter saturates, and only
                # the complaints it holds are logged to age out.
                if complaints[i] < np.uint8(255):
                    complaints[i] += np.uint8(1)
                    complainers[logged] = i
                    logged += 1
                count += 1
            if gone:
                gone_count += 1
            elif wait <= target:
                in_target += 1
            wait_sum += wait
    return complainers[:logged].copy(), settled, in_target, gone_count, count, wait_sum


@njit(cache=True)
def first_come_first_served(arrivals, service, patience, impatient, agents, busy_ends):
    """The contact center's queue, caller by caller in order of arrival (see :func:`sim.queue.serve_in_order`):
    each takes the agent that frees first, or hangs up (``impatient``) when the wait would pass their
    patience, taking the agent for no time. ``busy_ends``: sorted minutes of the agents busy at the start.

    Times are added up as a discrete-event calendar adds them (an event due ``d`` after the clock's
    ``now`` falls at ``now + d``), so the waits are the same bytes as the simpy queue's the tests keep."""
    n = arrivals.size
    waits = np.empty(n)
    gone = np.zeros(n, np.bool_)
    # The agents' free times as a binary min-heap: sorted is a heap. Idle agents are free from the start;
    # the busy ones at their timers: one timer at a time, to the next agent due, freeing every agent due
    # by the moment it fires.
    free = np.zeros(agents)
    held = busy_ends.size
    if held:
        now = 0.0 + busy_ends[0]
        k = 0
        while k < held:
            free[agents - held + k] = now
            k += 1
            while k < held and busy_ends[k] <= now:
                free[agents - held + k] = now
                k += 1
            if k < held:
                now = now + (busy_ends[k] - now)
    clock = 0.0
    for i in range(n):
        # Each arrival is scheduled from the one before it.
        clock = clock + (arrivals[i] - clock)
        first = free[0]
        answered = max(clock, first)
        waited = answered - clock
        if impatient and waited > patience[i]:
            waits[i] = patience[i]
            gone[i] = True
            until = answered
        else:
            waits[i] = waited
            until = answered + service[i]
        # Replace the heap's top with ``until`` and sift it down.
        j = 0
        while True:
            child = 2 * j + 1
            if child >= agents:
                break
            if child + 1 < agents and free[child + 1] < free[child]:
                child += 1
            if free[child] >= until:
                break
            free[j] = free[child]
            j = child
        free[j] = until
    return waits, gone


@njit(cache=True)
def region_runs(uid, size, batch_starts, region, r):
    """The ``[first, end)`` row runs of region ``r``: one per batch of units (rows from the first with a
    uid of at least ``batch_starts[b]``), within which rows are grouped by region."""
    uids = uid[:size]
    firsts = np.searchsorted(uids, batch_starts)
    runs = np.empty((batch_starts.size, 2), np.int64)
    count = 0
    code = np.uint8(r)
    for b in range(batch_starts.size):
        a = firsts[b]
        e = firsts[b + 1] if b + 1 < batch_starts.size else size
        if e <= a:
            continue
        block = region[a:e]
        first = a + np.searchsorted(block, code, side="left")
        end = a + np.searchsorted(block, code, side="right")
        if end > first:
            runs[count, 0] = first
            runs[count, 1] = end
            count += 1
    return runs[:count].copy()


@njit(cache=True)
def outage_hits(runs, status, uid, salt, severity):
    """The rows of ``runs`` (a region's) that an outage hits: active units whose keyed uniform is below
    ``severity``. Each run is read in order, a block at a time: the draws vectorize (one mask per
    block), then the block's hits are listed without a branch."""
    total = 0
    for b in range(runs.shape[0]):
        total += runs[b, 1] - runs[b, 0]
    hits = np.empty(total, np.int64)
    mask = np.empty(BLOCK, np.bool_)
    k = 0
    for b in range(runs.shape[0]):
        for start in range(runs[b, 0], runs[b, 1], BLOCK):
            stop = min(runs[b, 1], start + BLOCK)
            for i in range(start, stop):
                mask[i - start] = (status[i] == 0) & (uniform32(unit_bits(salt, uid[i])) < severity)
            for i in range(start, stop):
                hits[k] = i
                k += mask[i - start]
    return hits[:k].copy()


@njit(cache=True)
def add_to_rows(values, rows, amount):
    """``values[rows] += amount`` (rows may repeat: each adds), without numpy's fancy-index temporaries."""
    for r in range(rows.size):
        values[rows[r]] += amount


@njit(cache=True)
def lower_satisfaction(rows, satisfaction, drop):
    """Satisfaction of ``rows`` down by ``drop``, not below 0."""
    for r in range(rows.size):
        i = rows[r]
        satisfaction[i] = max(satisfaction[i] - drop, np.float32(0.0))


@njit(cache=True)
def keyed_below(rows, uid, salt, share):
    """The rows whose keyed uniform is below ``share``."""
    out = np.empty(rows.size, np.int64)
    count = 0
    for j in range(rows.size):
        if uniform64(unit_bits(salt, uid[rows[j]])) < share:
            out[count] = rows[j]
            count += 1
    return out[:count].copy()


@njit(cache=True)
def keyed_binomial(rows, uid, salt, trials, share):
    """Each row's Binomial(``trials``, ``share``) count: one keyed uniform per unit and trial (trial
    ``t`` of unit ``u`` keyed as ``u * trials + t``; with one trial, the draw of :func:`keyed_below`)."""
    counts = np.zeros(rows.size, np.int64)
    for j in range(rows.size):
        first = np.int64(uid[rows[j]]) * trials
        for t in range(trials):
            counts[j] += uniform64(unit_bits(salt, first + t)) < share
    return counts


@njit(cache=True)
def age_rows(n, satisfaction, usual, recovery, status, contract_end, uid, salt, month, rate, term, renew,
             propensity, renewal_salt, renewal, renewal_table):
    """The month's end for rows ``[0, n)``: satisfaction recovers part of the way to the tier's usual
    level, (with ``renew``) active units out of contract re-sign with probability ``rate``, and each
    unit's own propensity is drawn afresh with probability ``renewal`` (from ``renewal_table``, 256
    evenly spaced quantiles of the tier's law, picked by the low eight bits of the unit's draw)."""
    for i in range(n):
        satisfaction[i] += (usual - satisfaction[i]) * recovery
    if renew:
        signed = np.int16(month + term)
        # Branch-free (every row hashed, a select to write), so that it vectorizes: branching on each
        # row's status and contract to skip the hash ran at a third of the speed.
        for i in range(n):
            due = (status[i] == 0) & (contract_end[i] <= month) & (uniform32(unit_bits(salt, uid[i])) < rate)
            contract_end[i] = signed if due else contract_end[i]
    if renewal > 0:
        for i in range(n):
            bits = unit_bits(renewal_salt, uid[i])
            fresh = renewal_table[np.int64(bits & _U64(255))]
            propensity[i] = fresh if uniform32(bits) < renewal else propensity[i]


@njit(cache=True)
def compact_all(n, status, uid, region, churn_month, join_month, contract_end, satisfaction, complaints,
                last_offer, effect_until, effect_lever, propensity, model_error):
    """Move the active rows of every attribute of a tier to the front, in order (in place), in one pass:
    ``status`` is read once and each kept row is moved while it is in cache, instead of one pass per
    array. Returns the rows kept."""
    kept = 0
    for i in range(n):
        if status[i] == 0:
            if kept != i:
                uid[kept] = uid[i]
                region[kept] = region[i]
                churn_month[kept] = churn_month[i]
                join_month[kept] = join_month[i]
                contract_end[kept] = contract_end[i]
                satisfaction[kept] = satisfaction[i]
                complaints[kept] = complaints[i]
                last_offer[kept] = last_offer[i]
                effect_until[kept] = effect_until[i]
                effect_lever[kept] = effect_lever[i]
                propensity[kept] = propensity[i]
                model_error[kept] = model_error[i]
                status[kept] = 0
            kept += 1
    return kept


# --- lines that respond differently (a lever's ``response`` and ``acts_on``) -----------------------

_TWO_PI = 2.0 * math.pi
_U32_UNIT = 1.0 / 4294967296.0


@njit(inline="always", cache=True)
def standard_normal(bits: np.uint64) -> float:
    """A standard normal from 64 random bits (Box-Muller: the high 32 bits give the radius, the low 32
    the angle): one keyed draw per unit, recomputed when needed instead of stored."""
    u1 = (float(np.int64(bits >> _U64(32))) + 0.5) * _U32_UNIT
    u2 = float(np.int64(bits & _U64(0xFFFFFFFF))) * _U32_UNIT
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(_TWO_PI * u2)


@njit(inline="always", cache=True)
def _log_weight(own, propensity_step, propensity_mean, propensity_inv_sd, rho, spread):
    """log w of a line: w = exp(-spread * u - spread^2 / 2) multiplies the odds an offer leaves, with
    u = rho * z + sqrt(1 - rho^2) * own its responsiveness and z its standardized propensity."""
    z = (float(propensity_step) - propensity_mean) * propensity_inv_sd
    u = rho * z + math.sqrt(max(0.0, 1.0 - rho * rho)) * own
    return -spread * u - 0.5 * spread * spread


@njit(cache=True)
def line_weights(rows, uid, propensity, salt, propensity_mean, propensity_inv_sd, rho, spread):
    """w of each of ``rows`` (see :func:`_log_weight`): what a lever's stated effect is multiplied by on
    that line's odds of churn (mean 1 over lines)."""
    out = np.empty(rows.size, np.float64)
    for j in range(rows.size):
        i = rows[j]
        own = standard_normal(unit_bits(salt, uid[i]))
        out[j] = math.exp(_log_weight(own, propensity[i], propensity_mean, propensity_inv_sd, rho, spread))
    return out


DRIVER_TERMS = 6
"""Length of the ``drivers`` vector of :func:`response_terms`: the price-gap term, the satisfaction
coefficient, complaints per line, out of contract, the competitor-pressure term, the propensity step."""


@njit(inline="always", cache=True)
def _driver_push(i, mask, month, drivers, network, satisfaction, region, contract_end, complaints, propensity):
    """The log-odds that the drivers of ``mask`` (bits in the order of
    :data:`sim.scenario.levers.DRIVERS`) add to row ``i``'s hazard; a driver that holds the line (a
    negative term) adds nothing: an offer cannot take away a reason to stay."""
    push = 0.0
    if mask & 1:
        push += max(0.0, drivers[0])
    if mask & 2:
        push += max(0.0, network[region[i]])
    if mask & 4:
        push += max(0.0, drivers[1] * (1.0 - satisfaction[i]))
    if mask & 8:
        push += max(0.0, drivers[2] * complaints[i])
    if mask & 16:
        push += max(0.0, drivers[3] * (contract_end[i] <= month))
    if mask & 32:
        push += max(0.0, drivers[4])
    if mask & 64:
        push += max(0.0, drivers[5] * propensity[i])
    return push


@njit(cache=True)
def response_terms(logit, n, month, effect_until, effect_lever, spreads, rhos, cuts, masks, uid, propensity, salt,
                   propensity_mean, propensity_inv_sd, drivers, network, satisfaction, region, contract_end,
                   complaints):
    """Adds to ``logit[:n]`` what the running offers of levers that vary by line change from their table
    term (the lever's stated log(1 - cut), or 0 for a lever with named drivers, whose whole term is here):
    log w for a spread of responsiveness, log(1 - cut * (1 - exp(-push))) for an offer acting on the
    drivers of ``masks`` (it removes ``cut`` of the odds they add). Rows on no such offer are skipped:
    offers run on a few lines, so the pass reads two bytes of most rows."""
    for i in range(n):
        if effect_until[i] < month:
            continue
        k = effect_lever[i] & LEVER_BITS
        spread, mask = spreads[k], masks[k]
        if spread <= 0.0 and mask == 0:
            continue
        term = 0.0
        if mask != 0:
            push = _driver_push(i, mask, month, drivers, network, satisfaction, region, contract_end, complaints,
                                propensity)
            term += math.log(max(1e-9, 1.0 - cuts[k] * (1.0 - math.exp(-push))))
        if spread > 0.0:
            own = standard_normal(unit_bits(salt, uid[i]))
            term += _log_weight(own, propensity[i], propensity_mean, propensity_inv_sd, rhos[k], spread)
        logit[i] += np.float32(term)


@njit(cache=True)
def driver_push_rows(rows, mask, month, drivers, network, satisfaction, region, contract_end, complaints,
                     propensity):
    """Per row of ``rows``: the log-odds the drivers of ``mask`` add to its hazard (:func:`_driver_push`)."""
    out = np.empty(rows.size, np.float64)
    for j in range(rows.size):
        out[j] = _driver_push(rows[j], mask, month, drivers, network, satisfaction, region, contract_end,
                              complaints, propensity)
    return out


@njit(cache=True)
def keyed_normals(rows, uid, salt):
    """A standard normal per row's unit, keyed by its uid (stream ``salt``)."""
    out = np.empty(rows.size, np.float64)
    for j in range(rows.size):
        out[j] = standard_normal(unit_bits(salt, uid[rows[j]]))
    return out


_Q_A = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
        -3.066479806614716e+01, 2.506628277459239e+00)
_Q_B = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
        -1.328068155288572e+01)
_Q_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
        4.374664141464968e+00, 2.938163982698783e+00)
_Q_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00)


@njit(cache=True)
def normal_quantile(u: np.ndarray) -> np.ndarray:
    """The standard normal quantile of each ``u`` (Acklam's rational approximation, relative error below
    1.2e-9). New lines arrive every month in batches of a few dozen: one loop costs less than the
    dozen numpy calls a batch would take."""
    a, b, c, d = _Q_A, _Q_B, _Q_C, _Q_D
    out = np.empty(u.size)
    for i in range(u.size):
        p = min(max(u[i], 1e-12), 1 - 1e-12)
        if p < 0.02425 or p > 1 - 0.02425:
            t = math.sqrt(-2 * math.log(p if p < 0.5 else 1 - p))
            x = (((((c[0] * t + c[1]) * t + c[2]) * t + c[3]) * t + c[4]) * t + c[5]) / \
                ((((d[0] * t + d[1]) * t + d[2]) * t + d[3]) * t + 1)
            out[i] = x if p < 0.5 else -x
        else:
            q = p - 0.5
            r = q * q
            out[i] = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / \
                (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
    return out


@njit(cache=True)
def normal_steps(u: np.ndarray, scale: float, step: float) -> np.ndarray:
    """``clip(rint(normal_quantile(u) * scale / step), -127, 127)`` as int8: a normal attribute of new
    units (their own propensity, the churn model's error about them) in one-byte steps, as numpy would
    compute it, in one pass over a month's few dozen joiners."""
    q = normal_quantile(u)
    out = np.empty(u.size, np.int8)
    for i in range(u.size):
        out[i] = np.int8(min(max(np.rint(q[i] * scale / step), -127.0), 127.0))
    return out


@njit(cache=True)
def sorted_regions(u: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """The region of each uniform ``u`` on the cumulative shares ``cuts`` (the first region whose cut is
    above it, the last at most), sorted: numpy's ``sort(minimum(searchsorted(cuts, u, 'right'), last))``,
    counted instead of sorted."""
    regions = cuts.size
    counts = np.zeros(regions, np.int64)
    for i in range(u.size):
        r = 0
        while r < regions - 1 and cuts[r] <= u[i]:
            r += 1
        counts[r] += 1
    out = np.empty(u.size, np.uint8)
    start = 0
    for r in range(regions):
        out[start:start + counts[r]] = r
        start += counts[r]
    return out
