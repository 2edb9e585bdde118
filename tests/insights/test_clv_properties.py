"""Properties of the BG/NBD and Gamma-Gamma implementation that hold for any data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import approx_fprime
from scipy.special import gammaln, hyp2f1, logsumexp

from insights import clv
from insights.clv import BgNbdParams, GammaGammaParams
from insights.errors import InvalidSummaryError, ModelFitError

CDNOW = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
CDNOW_SPEND = GammaGammaParams(p=6.25, q=3.74, v=15.44)


def _simulate_bgnbd(params: BgNbdParams, n: int, horizon: float, seed: int):
    """Customers drawn from the BG/NBD story: Poisson purchases at rate lambda ~ Gamma(r, 1/alpha),
    and after each purchase a drop-out with probability p ~ Beta(a, b)."""
    rng = np.random.default_rng(seed)
    rates = rng.gamma(params.r, 1.0 / params.alpha, n)
    dropout = rng.beta(params.a, params.b, n)
    age = rng.uniform(horizon / 2, horizon, n)
    x, t_x = np.zeros(n), np.zeros(n)
    for i in range(n):
        clock = 0.0
        while True:
            clock += rng.exponential(1.0 / rates[i])
            if clock > age[i]:
                break
            x[i] += 1
            t_x[i] = clock
            if rng.random() < dropout[i]:
                break
    return x, t_x, age


def test_bgnbd_log_likelihood_gradient_is_the_analytic_one():
    # given some customers and a point away from the optimum
    x, t_x, age = _simulate_bgnbd(CDNOW, 300, 40.0, seed=1)
    point = np.log([0.5, 3.0, 1.2, 2.0])

    def total(log_params):
        return clv.bgnbd_log_likelihood(np.exp(log_params), x, t_x, age).sum()

    # when the analytic gradient is compared with finite differences
    r, alpha, a, b = np.exp(point)
    _, gradient = clv._bgnbd_core(r, alpha, a, b, x, t_x, age, gradient=True)
    analytic = gradient.sum(axis=1)

    # then they agree
    np.testing.assert_allclose(analytic, approx_fprime(point, total, 1e-7), rtol=1e-4, atol=1e-3)


def test_gamma_gamma_gradient_drives_the_fit_to_the_likelihood_maximum():
    # given simulated repeat customers' mean spends
    rng = np.random.default_rng(3)
    x = rng.integers(1, 8, 500).astype(float)
    nu = rng.gamma(4.0, 1 / 150.0, 500)
    m = np.array([rng.gamma(3.0 * k, 1 / (k * n)) for k, n in zip(x, nu, strict=True)])

    fitted = clv.gamma_gamma_fit(x, m)

    # then the fitted point is a maximum: nudging any parameter lowers the likelihood
    best = clv.gamma_gamma_log_likelihood(fitted, x, m).sum()
    for index in range(3):
        for factor in (0.99, 1.01):
            point = [fitted.p, fitted.q, fitted.v]
            point[index] *= factor
            assert clv.gamma_gamma_log_likelihood(point, x, m).sum() < best
    assert fitted.log_likelihood == pytest.approx(best)


def test_bgnbd_fit_recovers_the_parameters_of_simulated_customers():
    # given 4,000 customers simulated with known parameters
    truth = BgNbdParams(r=0.8, alpha=6.0, a=0.6, b=2.5)
    x, t_x, age = _simulate_bgnbd(truth, 4000, 52.0, seed=7)

    # when fitted
    fitted = clv.bgnbd_fit(x, t_x, age)

    # then the estimates are near the truth (sampling error, not bias)
    assert fitted.r == pytest.approx(truth.r, rel=0.15)
    assert fitted.alpha == pytest.approx(truth.alpha, rel=0.2)
    assert fitted.a == pytest.approx(truth.a, rel=0.3)
    assert fitted.b == pytest.approx(truth.b, rel=0.4)


def test_fit_does_not_depend_on_the_time_unit():
    # given the same customers measured in weeks and in days
    x, t_x, age = _simulate_bgnbd(CDNOW, 1500, 39.0, seed=3)

    weeks = clv.bgnbd_fit(x, t_x, age)
    days = clv.bgnbd_fit(x, t_x * 7, age * 7)

    # then only alpha changes, by the unit ratio, and so do predictions over the same real horizon
    assert days.r == pytest.approx(weeks.r, rel=1e-4)
    assert days.alpha == pytest.approx(weeks.alpha * 7, rel=1e-4)
    assert days.a == pytest.approx(weeks.a, rel=1e-4)
    assert days.b == pytest.approx(weeks.b, rel=1e-4)
    in_weeks = clv.bgnbd_conditional_expected_purchases(weeks, 13, x[:50], t_x[:50], age[:50])
    in_days = clv.bgnbd_conditional_expected_purchases(days, 91, x[:50], t_x[:50] * 7, age[:50] * 7)
    np.testing.assert_allclose(in_days, in_weeks, rtol=1e-3)


def test_weights_count_identical_customers():
    # given customers with duplicates, once expanded and once compressed with weights
    x, t_x, age = _simulate_bgnbd(CDNOW, 400, 30.0, seed=5)
    x, t_x, age = np.round(x), np.round(t_x), np.round(age)
    t_x = np.minimum(t_x, age)
    rows, counts = np.unique(np.vstack([x, t_x, age]).T, axis=0, return_counts=True)

    expanded = clv.bgnbd_fit(x, t_x, age)
    compressed = clv.bgnbd_fit(rows[:, 0], rows[:, 1], rows[:, 2], weights=counts)

    assert compressed.n_customers == 400
    assert compressed.log_likelihood == pytest.approx(expanded.log_likelihood, abs=1e-6)
    assert compressed.r == pytest.approx(expanded.r, rel=1e-4)
    assert compressed.b == pytest.approx(expanded.b, rel=1e-4)


@settings(max_examples=200, deadline=None)
@given(
    x=st.integers(min_value=0, max_value=60),
    recency_share=st.floats(min_value=0, max_value=1),
    age=st.floats(min_value=0.1, max_value=500),
)
def test_probability_alive_is_a_probability_and_one_without_repeat_purchases(x, recency_share, age):
    recency = recency_share * age if x else 0.0
    alive = clv.bgnbd_probability_alive(CDNOW, x, recency, age)[0]
    assert 0.0 <= alive <= 1.0
    if x == 0:
        assert alive == 1.0


@settings(max_examples=200, deadline=None)
@given(
    x=st.integers(min_value=0, max_value=40),
    recency_share=st.floats(min_value=0, max_value=1),
    age=st.floats(min_value=0.1, max_value=200),
    horizon=st.floats(min_value=0.5, max_value=100),
)
def test_conditional_expectation_equals_the_printed_formula_and_grows_with_the_horizon(x, recency_share, age, horizon):
    # given any customer
    recency = recency_share * age if x else 0.0
    r, alpha, a, b = CDNOW.r, CDNOW.alpha, CDNOW.a, CDNOW.b

    # when the expectation is evaluated through Euler's transformation
    ours = clv.bgnbd_conditional_expected_purchases(CDNOW, horizon, x, recency, age)[0]

    # then it equals FHL 2005 eq. 10 as printed (fine at these sizes) and grows with the horizon
    z = horizon / (alpha + age + horizon)
    printed = (
        (a + b + x - 1)
        / (a - 1)
        * (1 - ((alpha + age) / (alpha + age + horizon)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z))
    ) / (1 + (x > 0) * a / (b + x - 1) * ((alpha + age) / (alpha + recency)) ** (r + x))
    assert ours == pytest.approx(printed, rel=1e-6, abs=1e-9)
    longer = clv.bgnbd_conditional_expected_purchases(CDNOW, horizon * 2, x, recency, age)[0]
    assert longer >= ours >= 0


def _log_hyp2f1_by_series(a, b, c, z, terms=40_000):
    """log 2F1(a, b; c; z) for positive a, b, c and 0 < z < 1, summing the series in log space."""
    k = np.arange(terms)
    log_terms = (
        gammaln(a + k) - gammaln(a) + gammaln(b + k) - gammaln(b) - gammaln(c + k) + gammaln(c) - gammaln(k + 1)
    ) + k * np.log(z)
    return logsumexp(log_terms)


def test_heavy_buyers_and_long_horizons_stay_finite_and_exact():
    # given a customer with 400 repeat purchases, where the printed formula overflows (note 027)
    r, alpha, a, b = CDNOW.r, CDNOW.alpha, CDNOW.a, CDNOW.b
    x, recency, age, horizon = 400, 99.0, 100.0, 500.0
    z = horizon / (alpha + age + horizon)
    with np.errstate(all="ignore"):
        printed = hyp2f1(r + x, b + x, a + b + x - 1, z)
    assert not np.isfinite(printed) or printed > 1e300

    # when we predict over a long horizon
    ours = clv.bgnbd_conditional_expected_purchases(CDNOW, horizon, x, recency, age)[0]

    # then the prediction is finite and equals the printed formula evaluated in log space
    log_bracket_term = (r + x) * np.log((alpha + age) / (alpha + age + horizon)) + _log_hyp2f1_by_series(
        r + x, b + x, a + b + x - 1, z
    )
    reference = (a + b + x - 1) / (a - 1) * (1 - np.exp(log_bracket_term))
    reference /= 1 + a / (b + x - 1) * ((alpha + age) / (alpha + recency)) ** (r + x)
    assert np.isfinite(ours)
    assert ours == pytest.approx(reference, rel=1e-8)


@pytest.mark.parametrize("x", [0, 1, 3, 12])
def test_a_nearly_uniform_drop_out_stays_exact(x):
    # given a population whose drop-out probabilities barely differ (a, b large), where Euler's
    # form overflows (exp(a z))
    params = BgNbdParams(r=6.4, alpha=830.0, a=617_458.0, b=4_309_413.0)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    recency, age, horizon = (40.0 if x else 0.0), 90.0, 365.0

    ours = clv.bgnbd_conditional_expected_purchases(params, horizon, x, recency, age)[0]

    # then it equals the printed formula summed in log space
    z = horizon / (alpha + age + horizon)
    log_term = (r + x) * np.log((alpha + age) / (alpha + age + horizon)) + _log_hyp2f1_by_series(
        r + x, b + x, a + b + x - 1, z, terms=4000
    )
    reference = (a + b + x - 1) / (a - 1) * (-np.expm1(log_term))
    if x:
        reference /= 1 + a / (b + x - 1) * ((alpha + age) / (alpha + recency)) ** (r + x)
    assert np.isfinite(ours)
    assert ours == pytest.approx(reference, rel=1e-7)


def test_gamma_gamma_spend_shrinks_towards_the_population_mean():
    # given a customer with one repeat purchase of 500 and one with twenty
    one, twenty = clv.gamma_gamma_conditional_expected_spend(CDNOW_SPEND, [1, 20], [500.0, 500.0])

    # then both lie between the population mean and their own, the frequent one closer to their own
    mean = CDNOW_SPEND.population_mean_spend
    assert mean < one < twenty < 500
    # and someone without repeat purchases gets the population mean, whatever spend is passed
    assert clv.gamma_gamma_conditional_expected_spend(CDNOW_SPEND, 0, 0.0)[0] == pytest.approx(mean)


def test_clv_is_discounted_and_grows_with_the_horizon():
    args = (CDNOW, CDNOW_SPEND, [3], [20.0], [30.0], [40.0])
    undiscounted = clv.customer_lifetime_value(*args, periods_per_month=4.348, monthly_discount_rate=0.0)
    discounted = clv.customer_lifetime_value(*args, periods_per_month=4.348)
    two_years = clv.customer_lifetime_value(*args, periods_per_month=4.348, months=24)

    # with no discount, CLV is expected spend x expected purchases over the 12 months
    purchases = clv.bgnbd_conditional_expected_purchases(CDNOW, 12 * 4.348, 3, 20.0, 30.0)
    spend = clv.gamma_gamma_conditional_expected_spend(CDNOW_SPEND, 3, 40.0)
    assert undiscounted[0] == pytest.approx(purchases[0] * spend[0])
    assert undiscounted[0] > discounted[0] > undiscounted[0] / 1.01**12
    assert two_years[0] > discounted[0]


@pytest.mark.parametrize(
    ("frequency", "recency", "age", "message"),
    [
        ([1, 2], [3, 5], [2, 9], "recency must lie between"),
        ([0], [1], [5], "without repeat purchases has recency 0"),
        ([1.5], [1], [5], "whole number"),
        ([-1], [0], [5], "whole number"),
        ([1], [float("nan")], [5], "finite"),
    ],
)
def test_impossible_summaries_are_refused_with_a_clear_message(frequency, recency, age, message):
    with pytest.raises(InvalidSummaryError, match=message) as error:
        clv.bgnbd_fit(frequency * 20, recency * 20, age * 20)
    assert error.value.code == "insights_invalid_summary"


def test_fit_needs_enough_customers_and_repeat_buyers():
    with pytest.raises(ModelFitError) as too_few:
        clv.bgnbd_fit([1, 0], [1, 0], [3, 3])
    assert too_few.value.code == "insights_too_few_customers"

    with pytest.raises(ModelFitError) as nobody_came_back:
        clv.bgnbd_fit([0] * 50, [0] * 50, [10] * 50)
    assert nobody_came_back.value.code == "insights_no_repeat_buyers"

    with pytest.raises(ModelFitError) as no_spend:
        clv.gamma_gamma_fit([0, 0, 1], [0, 0, 10.0])
    assert no_spend.value.code == "insights_too_few_repeat_customers"


def test_spend_must_be_positive_for_repeat_buyers():
    with pytest.raises(InvalidSummaryError):
        clv.gamma_gamma_fit([1] * 20, [0.0] * 20)
