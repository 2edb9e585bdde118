"""Customer-base models: BG/NBD for purchase counts and Gamma-Gamma for spend, and 12-month CLV.

References
- Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way: An Alternative to the
  Pareto/NBD Model", Marketing Science 24(2): the BG/NBD likelihood (eq. 6), P(alive) and the
  conditional expectation (eq. 10). On the CDNOW sample: r=0.243, alpha=4.414, a=0.793, b=2.426,
  LL=-9582.4.
- Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value" (brucehardie.com note 025):
  the likelihood of a customer's mean spend and E(M | x, mbar). On CDNOW: p=6.25, q=3.74, gamma=15.44.
- Fader & Hardie (2013), "Overcoming the BG/NBD Model's #NUM! Error Problem" (note 027): the
  Gaussian hypergeometric function in the expectations overflows for large x or t when evaluated
  as printed; we evaluate it after Euler's transformation (see `_bgnbd_future_term`).

Conventions (the papers' and lifetimes'): for each customer
- `frequency` x: the number of *repeat* purchase occasions (all occasions minus the first);
- `recency` t_x: time from the first to the last purchase (0 when x = 0);
- `age` T: time from the first purchase to the end of observation (T >= t_x);
- `monetary_value` mbar: the mean value of the repeat purchases (only used when x > 0).
Any time unit works as long as every time (T, t_x, the horizon t) uses it; alpha is in that unit.

Fitting is maximum likelihood over the log of the parameters (so they stay positive) with
L-BFGS-B and the analytic gradient. Times are rescaled so the largest age is 10 before fitting
(and alpha scaled back), and spends so their mean is 1 (and gamma scaled back): the optimum is the
same, the optimiser just sees numbers near 1. Optional `weights` let identical customers be
fitted once (a row with weight k counts as k customers).

This module is pure numpy/scipy: no database, so the nightly task and the CDNOW test share it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import OptimizeResult, minimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

from insights.errors import InvalidSummaryError, ModelFitError

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
ArrayLike = Sequence[float] | npt.NDArray[np.floating] | npt.NDArray[np.integer] | float | int

# A month in days (365.25 / 12), for callers that measure time in days.
DAYS_PER_MONTH = 30.4375
# The monthly discount rate for CLV: 1% a month is (1.01 ** 12 - 1) = 12.68% a year, the rate the
# lifetimes documentation uses; a retailer's cost of capital is usually 8-15% a year.
DEFAULT_MONTHLY_DISCOUNT_RATE = 0.01
# Below this, the data say nothing reliable about a population of customers.
MIN_CUSTOMERS_BGNBD = 10
MIN_REPEAT_CUSTOMERS_GAMMA_GAMMA = 10


@dataclass(frozen=True, slots=True)
class BgNbdParams:
    """BG/NBD: purchase rates ~ Gamma(r, alpha); drop-out probability per purchase ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = math.nan
    n_customers: int = 0


@dataclass(frozen=True, slots=True)
class GammaGammaParams:
    """Gamma-Gamma: spend per purchase ~ Gamma(p, nu); nu ~ Gamma(q, v) across customers (v is gamma)."""

    p: float
    q: float
    v: float
    log_likelihood: float = math.nan
    n_customers: int = 0

    @property
    def population_mean_spend(self) -> float:
        """E(M) = p v / (q - 1): the expected mean spend of a customer we know nothing about."""
        return self.p * self.v / (self.q - 1.0)


# --- input handling ---------------------------------------------------------------------------------


def _floats(values: ArrayLike) -> FloatArray:
    return np.atleast_1d(np.asarray(values, dtype=np.float64))


def _summary(frequency: ArrayLike, recency: ArrayLike, age: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The three summaries as float arrays of one length; raises InvalidSummaryError on impossible rows."""
    x, t_x, big_t = np.broadcast_arrays(_floats(frequency), _floats(recency), _floats(age))
    x, t_x, big_t = (np.array(v, dtype=np.float64) for v in (x, t_x, big_t))
    problems = []
    if not (np.isfinite(x).all() and np.isfinite(t_x).all() and np.isfinite(big_t).all()):
        problems.append("values must be finite numbers")
    elif (x < 0).any() or (x != np.floor(x)).any():
        problems.append("frequency must be a whole number >= 0")
    elif (t_x < 0).any() or (t_x > big_t).any():
        problems.append("recency must lie between 0 and the customer's age")
    elif ((x == 0) & (t_x != 0)).any():
        problems.append("a customer without repeat purchases has recency 0")
    if problems:
        raise InvalidSummaryError("insights_invalid_summary", f"Invalid customer summary: {problems[0]}.")
    return x, t_x, big_t


def _weights(weights: ArrayLike | None, n: int) -> FloatArray:
    if weights is None:
        return np.ones(n)
    w = np.broadcast_to(_floats(weights), (n,)).astype(np.float64)
    if not np.isfinite(w).all() or (w < 0).any():
        raise InvalidSummaryError("insights_invalid_weights", "Weights must be finite and >= 0.")
    return w


# --- BG/NBD ----------------------------------------------------------------------------------------


def bgnbd_log_likelihood(
    params: BgNbdParams | Sequence[float], frequency: ArrayLike, recency: ArrayLike, age: ArrayLike
) -> FloatArray:
    """Each customer's log-likelihood (FHL 2005, eq. 6), evaluated in log space.

    L = B(a, b+x)/B(a, b) * G(r+x) a^r / (G(r) (alpha+T)^(r+x))
        + [x > 0] B(a+1, b+x-1)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+t_x)^(r+x))
    """
    x, t_x, big_t = _summary(frequency, recency, age)
    r, alpha, a, b = _bgnbd_tuple(params)
    return _bgnbd_ll_terms(r, alpha, a, b, x, t_x, big_t)


def _bgnbd_tuple(params: BgNbdParams | Sequence[float]) -> tuple[float, float, float, float]:
    if isinstance(params, BgNbdParams):
        return params.r, params.alpha, params.a, params.b
    r, alpha, a, b = (float(v) for v in params)
    return r, alpha, a, b


def _by_frequency(x: FloatArray) -> tuple[FloatArray, npt.NDArray[np.intp]]:
    """The distinct frequencies and, per customer, the index of theirs. Every special function of
    the likelihoods depends on the customer only through x, which takes few values: they are
    evaluated once per value and gathered, which makes an evaluation several times faster."""
    values, inverse = np.unique(x, return_inverse=True)
    return values, inverse.reshape(-1)


def _bgnbd_core(
    r: float,
    alpha: float,
    a: float,
    b: float,
    x: FloatArray,
    t_x: FloatArray,
    big_t: FloatArray,
    groups: tuple[FloatArray, npt.NDArray[np.intp]] | None = None,
    *,
    gradient: bool = False,
) -> tuple[FloatArray, FloatArray | None]:
    """Each customer's log-likelihood and, if asked, its gradient in (log r, log alpha, log a, log b)
    (4 x n). In log space:

        LL = lnG(r+x) - lnG(r) + r ln(alpha) - lnB(a, b) + logaddexp(alive, dropped)
        alive = lnB(a, b+x) - (r+x) ln(alpha+T)
        dropped = lnB(a+1, b+x-1) - (r+x) ln(alpha+t_x)      (x > 0 only)
    """
    values, inverse = groups if groups is not None else _by_frequency(x)
    has_repeat = values > 0
    # For x = 0 the dropped term is absent: evaluate it at x = 1 (always defined) and mask it out.
    safe = np.where(has_repeat, values, 1.0)
    common = (gammaln(r + values) - gammaln(r) + r * math.log(alpha) - betaln(a, b))[inverse]
    log_alive_t, log_last_t = np.log(alpha + big_t), np.log(alpha + t_x)
    rx = r + x
    alive = betaln(a, b + values)[inverse] - rx * log_alive_t
    dropped = np.where(has_repeat, betaln(a + 1.0, b + safe - 1.0), -np.inf)[inverse] - rx * log_last_t
    total = np.logaddexp(alive, dropped)
    ll = common + total
    if not gradient:
        return ll, None
    w2 = np.exp(alive - total)  # the weight of "still alive at T" in the mixture; 1 when x = 0
    w3 = 1.0 - w2
    psi_abx = digamma(a + b + values)[inverse]
    d_r = digamma(r + values)[inverse] - digamma(r) + math.log(alpha) - w2 * log_alive_t - w3 * log_last_t
    d_alpha = r / alpha - rx * (w2 / (alpha + big_t) + w3 / (alpha + t_x))
    d_a = -(digamma(a) - digamma(a + b)) + w2 * (digamma(a) - psi_abx) + w3 * (digamma(a + 1.0) - psi_abx)
    d_b = (
        -(digamma(b) - digamma(a + b))
        + w2 * (digamma(b + values)[inverse] - psi_abx)
        + w3 * (np.where(has_repeat, digamma(b + safe - 1.0), 0.0)[inverse] - psi_abx)  # w3 = 0 when x = 0
    )
    return ll, np.vstack([r * d_r, alpha * d_alpha, a * d_a, b * d_b])


def _bgnbd_ll_terms(
    r: float, alpha: float, a: float, b: float, x: FloatArray, t_x: FloatArray, big_t: FloatArray
) -> FloatArray:
    """Each customer's log-likelihood (see `_bgnbd_core`)."""
    return _bgnbd_core(r, alpha, a, b, x, t_x, big_t)[0]


def bgnbd_fit(
    frequency: ArrayLike,
    recency: ArrayLike,
    age: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    initial: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
) -> BgNbdParams:
    """Maximum-likelihood BG/NBD parameters for the customers given.

    `initial` is (r, alpha, a, b) with alpha in units where the largest age is 10.
    Raises InvalidSummaryError for impossible summaries and ModelFitError when the data cannot
    identify the model (fewer than MIN_CUSTOMERS_BGNBD customers, nobody bought twice, every
    customer bought again) or the optimiser does not converge.
    """
    x, t_x, big_t = _summary(frequency, recency, age)
    w = _weights(weights, len(x))
    n = float(w.sum())
    if n < MIN_CUSTOMERS_BGNBD:
        raise ModelFitError("insights_too_few_customers", f"BG/NBD needs at least {MIN_CUSTOMERS_BGNBD} customers.")
    if not (w * (x > 0)).any():
        raise ModelFitError("insights_no_repeat_buyers", "Nobody has bought twice yet: purchase rates are unknown.")
    if not (big_t > 0).any():
        raise ModelFitError("insights_no_history", "Every customer's first purchase is today.")

    # Customers with the same (x, t_x, T) contribute the same term: fit each once, weighted.
    rows, inverse = np.unique(np.column_stack([x, t_x, big_t]), axis=0, return_inverse=True)
    w = np.bincount(inverse.reshape(-1), weights=w, minlength=len(rows))
    ux, ut_x, ubig_t = rows[:, 0], rows[:, 1], rows[:, 2]
    scale = 10.0 / float(big_t.max())
    xs, ts, bts = ux, ut_x * scale, ubig_t * scale
    groups = _by_frequency(ux)

    def objective(log_params: FloatArray) -> tuple[float, FloatArray]:
        r, alpha, a, b = np.exp(log_params)
        ll, grad = _bgnbd_core(r, alpha, a, b, xs, ts, bts, groups, gradient=True)
        assert grad is not None
        return -float(w @ ll) / n, -(grad @ w) / n

    best = _minimise(objective, np.log(np.asarray(initial, dtype=np.float64)), "BG/NBD")
    r, alpha, a, b = (float(v) for v in np.exp(best.x))
    return BgNbdParams(
        r=r,
        alpha=alpha / scale,
        a=a,
        b=b,
        log_likelihood=_bgnbd_total_ll(r, alpha / scale, a, b, ux, ut_x, ubig_t, w),
        n_customers=round(n),
    )


def _bgnbd_total_ll(
    r: float, alpha: float, a: float, b: float, x: FloatArray, t_x: FloatArray, big_t: FloatArray, w: FloatArray
) -> float:
    return float(w @ _bgnbd_ll_terms(r, alpha, a, b, x, t_x, big_t))


# The log-parameters stay within +-LOG_BOUND (1.5e-8 .. 6.6e7): beyond, exp() under- or overflows.
# Degenerate data push the optimum there: too little history (a handful of customers), or no spread
# (every repeat customer spends exactly the same, so the spend distribution tends to a point mass).
# The model's limit is then another model (Poisson, a constant), its expressions lose precision
# (hypergeometric series with parameters of 1e7), so such a fit is refused with ModelFitError.
LOG_BOUND = 18.0


def _minimise(
    objective: Callable[[FloatArray], tuple[float, FloatArray]], start: FloatArray, model: str
) -> OptimizeResult:
    """L-BFGS-B within LOG_BOUND with the analytic gradient and tight tolerances; one restart
    from the optimum found. Raises ModelFitError when no finite optimum inside the bounds is found."""
    options = {"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-10, "maxcor": 20}
    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(start)
    start = np.clip(start, -LOG_BOUND, LOG_BOUND)
    with np.errstate(all="ignore"):
        result = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds, options=options)
        # L-BFGS-B sometimes stops on a flat ridge; a restart rebuilds its Hessian estimate there.
        again = minimize(objective, result.x, jac=True, method="L-BFGS-B", bounds=bounds, options=options)
    if np.isfinite(again.fun) and not again.fun > result.fun:
        result = again
    if not np.isfinite(result.fun) or not np.isfinite(result.x).all():
        raise ModelFitError("insights_fit_failed", f"The {model} model did not converge ({result.message}).")
    if np.abs(result.x).max() >= LOG_BOUND - 1e-3:
        logger.warning("%s fit reached a parameter bound (degenerate data): %s", model, np.exp(result.x))
        raise ModelFitError(
            "insights_fit_degenerate",
            f"The {model} model has no finite optimum on these data (too little or too uniform history).",
        )
    return result


def bgnbd_probability_alive(
    params: BgNbdParams, frequency: ArrayLike, recency: ArrayLike, age: ArrayLike
) -> FloatArray:
    """P(still active at T | x, t_x, T) = 1 / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)).

    A customer who never came back is, under BG/NBD, alive for sure (drop-out happens only right
    after a purchase); the segments treat such customers by recency instead.
    """
    x, t_x, big_t = _summary(frequency, recency, age)
    r, alpha, a, b = _bgnbd_tuple(params)
    x_safe = np.where(x > 0, x, 1.0)
    log_odds_dead = (
        math.log(a) - np.log(b + x_safe - 1.0) + (r + x_safe) * (np.log(alpha + big_t) - np.log(alpha + t_x))
    )
    return np.where(x > 0, expit(-log_odds_dead), 1.0)


def _bgnbd_future_term(
    r: float, alpha: float, a: float, b: float, x: FloatArray, big_t: FloatArray, t: FloatArray
) -> FloatArray:
    """(a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))].

    The bracket is evaluated in a form whose series stays tame (the "#NUM!" problem of note 027:
    as printed, 2F1's upper parameters grow with x, and the series overflows for heavy buyers):
    - Pfaff's transformation 2F1(A, B; C; z) = (1-z)^(-B) 2F1(C-A, B; C; z/(z-1)) gives
      1 - 2F1(r+x, a-1; a+b+x-1; -t/(alpha+T)), which stays finite when a and b are large (a
      population with nearly the same drop-out probability);
    - where that is not finite, Euler's 2F1(A, B; C; z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z) gives
      1 - (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z), z = t/(alpha+T+t).
    At a = 1 the expression is 0/0; we step a by 1e-7 (its limit).
    """
    if abs(a - 1.0) < 1e-7:
        a = 1.0 + 1e-7
    c = a + b + x - 1.0
    with np.errstate(all="ignore"):
        bracket = 1.0 - hyp2f1(r + x, a - 1.0, c, -t / (alpha + big_t))
        bad = ~np.isfinite(bracket)
        if bad.any():
            z = t / (alpha + big_t + t)
            euler = 1.0 - np.power(1.0 - z, a - 1.0) * hyp2f1(a + b - 1.0 - r, a - 1.0, c, z)
            bracket = np.where(bad, euler, bracket)
    return (a + b + x - 1.0) / (a - 1.0) * bracket


def bgnbd_expected_purchases(params: BgNbdParams, t: ArrayLike) -> FloatArray:
    """E[X(t)]: expected repeat purchases in the first t periods of a new customer (FHL 2005, eq. 9)."""
    r, alpha, a, b = _bgnbd_tuple(params)
    horizon = _floats(t)
    zeros = np.zeros_like(horizon)
    return _bgnbd_future_term(r, alpha, a, b, zeros, zeros, horizon)


def bgnbd_conditional_expected_purchases(
    params: BgNbdParams, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, age: ArrayLike
) -> FloatArray:
    """E[Y(t) | x, t_x, T]: expected purchases in (T, T+t] (FHL 2005, eq. 10) = P(alive) * future term."""
    x, t_x, big_t = _summary(frequency, recency, age)
    r, alpha, a, b = _bgnbd_tuple(params)
    horizon = np.broadcast_to(_floats(t), x.shape)
    if (horizon < 0).any():
        raise InvalidSummaryError("insights_invalid_horizon", "The horizon must be >= 0.")
    return bgnbd_probability_alive(params, x, t_x, big_t) * _bgnbd_future_term(r, alpha, a, b, x, big_t, horizon)


# --- Gamma-Gamma -----------------------------------------------------------------------------------


def _spend_summary(frequency: ArrayLike, monetary_value: ArrayLike) -> tuple[FloatArray, FloatArray]:
    x, m = (np.array(v, dtype=np.float64) for v in np.broadcast_arrays(_floats(frequency), _floats(monetary_value)))
    if not (np.isfinite(x).all() and np.isfinite(m).all()) or (x < 0).any() or ((x > 0) & (m <= 0)).any():
        raise InvalidSummaryError(
            "insights_invalid_spend", "Invalid spend summary: repeat buyers need a mean spend above 0."
        )
    return x, m


def _gg_ll_terms(p: float, q: float, v: float, x: FloatArray, m: FloatArray) -> FloatArray:
    """log f(mbar | p, q, v; x)
    = lnG(px+q) - lnG(px) - lnG(q) + q ln v + (px-1) ln mbar + px ln x - (px+q) ln(v + x mbar)."""
    px = p * x
    return (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(v)
        + (px - 1.0) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(v + x * m)
    )


def gamma_gamma_log_likelihood(
    params: GammaGammaParams | Sequence[float], frequency: ArrayLike, monetary_value: ArrayLike
) -> FloatArray:
    """Each repeat customer's log-likelihood of their mean repeat spend (Fader & Hardie 2013, eq. 5)."""
    x, m = _spend_summary(frequency, monetary_value)
    p, q, v = (params.p, params.q, params.v) if isinstance(params, GammaGammaParams) else (float(k) for k in params)
    keep = x > 0
    return _gg_ll_terms(p, q, v, x[keep], m[keep])


def gamma_gamma_fit(
    frequency: ArrayLike,
    monetary_value: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    initial: Sequence[float] = (1.0, 1.0, 1.0),
) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma parameters from the repeat customers among those given.

    Customers with x = 0 are ignored (they have no repeat spend). `initial` is (p, q, v) with v in
    units where the mean spend is 1. Raises ModelFitError with fewer than
    MIN_REPEAT_CUSTOMERS_GAMMA_GAMMA repeat customers, or when the fit gives q <= 1 (mean spend
    would be infinite: the spends are too dispersed for the model).
    """
    x, m = _spend_summary(frequency, monetary_value)
    w = _weights(weights, len(x))
    keep = (x > 0) & (w > 0)
    x, m, w = x[keep], m[keep], w[keep]
    n = float(w.sum())
    if n < MIN_REPEAT_CUSTOMERS_GAMMA_GAMMA:
        raise ModelFitError(
            "insights_too_few_repeat_customers",
            f"Gamma-Gamma needs at least {MIN_REPEAT_CUSTOMERS_GAMMA_GAMMA} customers who bought again.",
        )
    scale = 1.0 / float(np.average(m, weights=w))
    ms = m * scale
    values, inverse = _by_frequency(x)
    log_m, log_x, xm = np.log(ms), np.log(x), x * ms

    def objective(log_params: FloatArray) -> tuple[float, FloatArray]:
        p, q, v = np.exp(log_params)
        pv = p * values  # per distinct frequency
        log_total = np.log(v + xm)
        ll = (gammaln(pv + q) - gammaln(pv))[inverse] - gammaln(q) + q * math.log(v)
        ll += (p * x - 1.0) * log_m + p * x * log_x - (p * x + q) * log_total
        psi_all = digamma(pv + q)
        d_p = x * ((psi_all - digamma(pv))[inverse] + log_m + log_x - log_total)
        d_q = psi_all[inverse] - digamma(q) + math.log(v) - log_total
        d_v = q / v - (p * x + q) / (v + xm)
        grad = np.vstack([p * d_p, q * d_q, v * d_v]) @ w
        return -float(w @ ll) / n, -grad / n

    best = _minimise(objective, np.log(np.asarray(initial, dtype=np.float64)), "Gamma-Gamma")
    p, q, v_scaled = (float(k) for k in np.exp(best.x))
    if q <= 1.0:
        raise ModelFitError("insights_spend_unbounded", "Spends are too dispersed for the Gamma-Gamma model (q <= 1).")
    v = v_scaled / scale
    return GammaGammaParams(p=p, q=q, v=v, log_likelihood=float(w @ _gg_ll_terms(p, q, v, x, m)), n_customers=round(n))


def gamma_gamma_conditional_expected_spend(
    params: GammaGammaParams, frequency: ArrayLike, monetary_value: ArrayLike
) -> FloatArray:
    """E(M | x, mbar) = p (v + x mbar) / (p x + q - 1): a weighted mean of the population mean
    p v / (q - 1) and the customer's own mean, the weight of the latter growing with x."""
    x, m = _spend_summary(frequency, monetary_value)
    m = np.where(x > 0, m, 0.0)
    return params.p * (params.v + x * m) / (params.p * x + params.q - 1.0)


# --- customer lifetime value -----------------------------------------------------------------------


def discounted_purchases(
    bgnbd: BgNbdParams,
    frequency: ArrayLike,
    recency: ArrayLike,
    age: ArrayLike,
    *,
    periods_per_month: float,
    months: int = 12,
    monthly_discount_rate: float = DEFAULT_MONTHLY_DISCOUNT_RATE,
) -> FloatArray:
    """sum over i = 1..months of (E[Y(i m) | ...] - E[Y((i-1) m) | ...]) / (1 + d)^i: the expected
    purchases of each of the next months, discounted to today (m = `periods_per_month`, d the
    monthly discount rate; cash of month i is discounted as if it arrived at its end)."""
    if months < 1 or periods_per_month <= 0 or monthly_discount_rate <= -1:
        raise InvalidSummaryError("insights_invalid_clv_horizon", "CLV needs months >= 1 and a positive month length.")
    x, t_x, big_t = _summary(frequency, recency, age)
    total = np.zeros_like(x)
    previous = np.zeros_like(x)
    for month in range(1, months + 1):
        cumulative = bgnbd_conditional_expected_purchases(bgnbd, month * periods_per_month, x, t_x, big_t)
        total += (cumulative - previous) / (1.0 + monthly_discount_rate) ** month
        previous = cumulative
    return total


def customer_lifetime_value(
    bgnbd: BgNbdParams,
    gamma_gamma: GammaGammaParams,
    frequency: ArrayLike,
    recency: ArrayLike,
    age: ArrayLike,
    monetary_value: ArrayLike,
    *,
    periods_per_month: float,
    months: int = 12,
    monthly_discount_rate: float = DEFAULT_MONTHLY_DISCOUNT_RATE,
) -> FloatArray:
    """Discounted expected spend over the next `months` months (Fader, Hardie & Lee 2005b, DCF form):

    CLV = E(M | x, mbar) * sum over i = 1..months of (E[Y(i m)] - E[Y((i-1) m)]) / (1 + d)^i

    with m = `periods_per_month` (DAYS_PER_MONTH when times are in days, 4.348 for weeks) and d the
    monthly discount rate (`discounted_purchases`). Spend is whatever the monetary values measure
    (revenue here; multiply by a margin for profit).
    """
    x, _ = _spend_summary(frequency, monetary_value)
    spend = gamma_gamma_conditional_expected_spend(gamma_gamma, x, monetary_value)
    return spend * discounted_purchases(
        bgnbd,
        frequency,
        recency,
        age,
        periods_per_month=periods_per_month,
        months=months,
        monthly_discount_rate=monthly_discount_rate,
    )
