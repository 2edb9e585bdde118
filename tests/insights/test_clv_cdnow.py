"""BG/NBD and Gamma-Gamma reproduce the published CDNOW results (see tests/data/README.md).

Published values:
- Fader, Hardie & Lee (2005), Marketing Science 24(2), table 1: r=0.243, alpha=4.414, a=0.793,
  b=2.426, LL=-9582.4; Hardie's BG/NBD spreadsheet: E[Y(39) | x=2, t_x=30.43, T=38.86] = 1.226 and
  E[X(t)] at t = 0.1429, 1, 3, 31.8571, 32, 78 weeks = 0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576.
- Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value": p=6.25, q=3.74, gamma=15.44
  (two decimals). CLVTools' correctness test pins the log-likelihood at those data: -4055.9177.
- The lifetimes documentation (fitted on the summary CSV, whose mean spends are rounded to cents):
  conditional expected average spend 24.658619 (customer 1), 18.911489 (2), 35.170981 (x = 0),
  71.462843 (6), 27.282408 (9); 12-"month" CLV at 1% a month with 30 periods a month 140.096211 (1),
  18.943467 (2), 38.180574 (x = 0), 1003.868107 (6), 167.418216 (9).
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from insights import clv

DATA = Path(__file__).resolve().parent.parent / "data"
CALIBRATION_END = dt.date(1997, 9, 30)  # 39 weeks after 1 January 1997


def _column(rows, name):
    return np.array([float(row[name]) for row in rows])


@pytest.fixture(scope="module")
def cdnow_summary():
    with (DATA / "cdnow_customers_summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    return _column(rows, "frequency"), _column(rows, "recency"), _column(rows, "T")


@pytest.fixture(scope="module")
def cdnow_summary_with_spend():
    with (DATA / "cdnow_customers_summary_with_transactions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    return tuple(_column(rows, name) for name in ("x", "t_x", "T", "zbar"))


@pytest.fixture(scope="module")
def cdnow_from_transactions():
    """Summaries rebuilt from the raw log the way the nightly SQL does: one purchase occasion per
    customer and day, repeat occasions after the first, times in weeks, exact (unrounded) spends."""
    per_day: dict[int, dict[dt.date, float]] = defaultdict(lambda: defaultdict(float))
    with (DATA / "CDNOW_sample.txt").open() as handle:
        for line in handle:
            _, customer, day, _units, amount = line.split()
            per_day[int(customer)][dt.date(int(day[:4]), int(day[4:6]), int(day[6:]))] += float(amount)
    x, t_x, age, spend = [], [], [], []
    for customer in sorted(per_day):
        days = sorted(d for d in per_day[customer] if d <= CALIBRATION_END)
        repeat = days[1:]
        x.append(len(repeat))
        t_x.append((days[-1] - days[0]).days / 7)
        age.append((CALIBRATION_END - days[0]).days / 7)
        spend.append(sum(per_day[customer][d] for d in repeat) / len(repeat) if repeat else 0.0)
    return tuple(np.array(values) for values in (x, t_x, age, spend))


def test_bgnbd_fit_reproduces_fader_hardie_lee_2005_to_three_decimals(cdnow_summary):
    # given the 2,357 CDNOW customers observed for 39 weeks
    frequency, recency, age = cdnow_summary
    assert len(frequency) == 2357

    # when BG/NBD is fitted by maximum likelihood
    params = clv.bgnbd_fit(frequency, recency, age)

    # then the parameters round to the published ones at three decimals
    assert round(params.r, 3) == 0.243
    assert round(params.alpha, 3) == 4.414
    assert round(params.a, 3) == 0.793
    assert round(params.b, 3) == 2.426
    assert params.log_likelihood == pytest.approx(-9582.4, abs=0.05)
    assert params.n_customers == 2357


def test_bgnbd_from_the_raw_transaction_log_matches_the_published_fit(cdnow_from_transactions):
    # given summaries rebuilt from CDNOW_sample.txt (same-day purchases are one occasion)
    frequency, recency, age, _ = cdnow_from_transactions

    # when fitted
    params = clv.bgnbd_fit(frequency, recency, age)

    # then the result is the published one too
    assert (round(params.r, 3), round(params.alpha, 3), round(params.a, 3), round(params.b, 3)) == (
        0.243,
        4.414,
        0.793,
        2.426,
    )


def test_bgnbd_conditional_expectation_matches_hardies_spreadsheet(cdnow_summary):
    # given the fitted model
    params = clv.bgnbd_fit(*cdnow_summary)

    # when we predict the next 39 weeks of customer 1 (x=2, t_x=30.43, T=38.86)
    expected = clv.bgnbd_conditional_expected_purchases(params, 39, 2, 30.43, 38.86)

    # then it is the spreadsheet's 1.226
    assert expected[0] == pytest.approx(1.226, abs=0.001)


def test_bgnbd_unconditional_expectation_matches_hardies_spreadsheet(cdnow_summary):
    params = clv.bgnbd_fit(*cdnow_summary)

    expected = clv.bgnbd_expected_purchases(params, [0.1429, 1.0, 3.00, 31.8571, 32.00, 78.00])

    np.testing.assert_allclose(expected, [0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576], atol=5e-4)


def test_gamma_gamma_fit_reproduces_fader_hardie_2013(cdnow_from_transactions):
    # given the 946 CDNOW customers with repeat purchases and their exact mean repeat spend
    frequency, _, _, spend = cdnow_from_transactions
    assert int((frequency > 0).sum()) == 946

    # when Gamma-Gamma is fitted by maximum likelihood
    params = clv.gamma_gamma_fit(frequency, spend)

    # then the parameters are the published ones at their published precision (two decimals)...
    assert (round(params.p, 2), round(params.q, 2), round(params.v, 2)) == (6.25, 3.74, 15.44)
    # ...and the maximised log-likelihood is CLVTools' reference value to three decimals
    assert params.log_likelihood == pytest.approx(-4055.9177, abs=5e-4)
    assert params.n_customers == 946


def test_gamma_gamma_on_the_rounded_summary_matches_the_lifetimes_documentation(cdnow_summary_with_spend):
    # given the summary CSV (mean spends rounded to cents, as lifetimes ships it)
    frequency, _, _, spend = cdnow_summary_with_spend

    # when fitted
    params = clv.gamma_gamma_fit(frequency, spend)

    # then the parameters and conditional spends are those the lifetimes documentation prints
    assert (round(params.p, 2), round(params.q, 2), round(params.v, 2)) == (6.25, 3.74, 15.45)
    customers = np.array([0, 1, 2, 5, 8])  # IDs 1, 2, 3, 6, 9
    spends = clv.gamma_gamma_conditional_expected_spend(params, frequency[customers], spend[customers])
    np.testing.assert_allclose(spends, [24.658619, 18.911489, 35.170981, 71.462843, 27.282408], rtol=1e-5)
    assert params.population_mean_spend == pytest.approx(35.170981, rel=1e-5)


def test_clv_matches_the_lifetimes_documentation(cdnow_summary_with_spend):
    # given both models fitted on the CDNOW summary
    frequency, recency, age, spend = cdnow_summary_with_spend
    bgnbd = clv.bgnbd_fit(frequency, recency, age)
    gamma_gamma = clv.gamma_gamma_fit(frequency, spend)
    customers = np.array([0, 1, 2, 5, 8])

    # when the CLV is computed with lifetimes' documented call (12 steps of 30 periods, 1% per step)
    value = clv.customer_lifetime_value(
        bgnbd,
        gamma_gamma,
        frequency[customers],
        recency[customers],
        age[customers],
        spend[customers],
        periods_per_month=30,
        months=12,
        monthly_discount_rate=0.01,
    )

    # then it is the documented output
    np.testing.assert_allclose(value, [140.096211, 18.943467, 38.180574, 1003.868107, 167.418216], rtol=1e-5)
