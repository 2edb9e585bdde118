"""factory-boy factories, one module per app. Import from here: `from tests.factories import ...`."""

from tests.factories.inventory import LocationFactory, ProductFactory, StockLevelFactory, VariantFactory
from tests.factories.people import UserFactory

__all__ = ["LocationFactory", "ProductFactory", "StockLevelFactory", "UserFactory", "VariantFactory"]
