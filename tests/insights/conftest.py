from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.factories.inventory import ProductFactory, VariantFactory

# Runs read complete days before midnight UTC of AS_OF.
AS_OF = datetime(2026, 6, 15, 4, 0, tzinfo=UTC)
CUTOFF = datetime(2026, 6, 15, tzinfo=UTC)


def days_ago(days: float, *, hour: int = 12) -> datetime:
    """`hour` o'clock UTC on the day `days` days before the cutoff day (1 = yesterday)."""
    return CUTOFF - timedelta(days=days) + timedelta(hours=hour)


@pytest.fixture
def shirt(db):
    return VariantFactory(product=ProductFactory(category="tops"), size="M", price="40.00")


@pytest.fixture
def sizes(db):
    """One top in XS..XL (same product)."""
    product = ProductFactory(category="tops", season="SS26")
    return {size: VariantFactory(product=product, size=size, price="50.00") for size in ("XS", "S", "M", "L", "XL")}
