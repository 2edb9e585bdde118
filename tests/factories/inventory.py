from decimal import Decimal

import factory

from inventory.barcodes import make_ean13
from inventory.models import Location, LocationKind, Product, StockLevel, Variant


class LocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Location
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"st{n:03d}")
    name = factory.Sequence(lambda n: f"Store {n}")
    kind = LocationKind.STORE
    city = "Austin"
    latitude = Decimal("30.267153")
    longitude = Decimal("-97.743057")
    sells_in_store = True
    ships_to_customers = False
    offers_pickup = True
    tax_rate = Decimal("0.0825")


class WarehouseFactory(LocationFactory):
    code = factory.Sequence(lambda n: f"wh{n:03d}")
    name = factory.Sequence(lambda n: f"Warehouse {n}")
    kind = LocationKind.WAREHOUSE
    sells_in_store = False
    ships_to_customers = True
    offers_pickup = False


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    style = factory.Sequence(lambda n: f"STY{n:05d}")
    name = factory.Sequence(lambda n: f"Linen Shirt {n}")
    brand = "Northwind"
    category = "tops"
    season = "SS26"


class VariantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Variant

    product = factory.SubFactory(ProductFactory)
    sku = factory.Sequence(lambda n: f"SKU-{n:06d}")
    barcode = factory.Sequence(lambda n: make_ean13(f"20{n:010d}"))
    size = "M"
    colour = "Black"
    price = Decimal("49.00")


class StockLevelFactory(factory.django.DjangoModelFactory):
    """A level row with zero stock. Put stock in through inventory.services, never here."""

    class Meta:
        model = StockLevel

    location = factory.SubFactory(LocationFactory)
    variant = factory.SubFactory(VariantFactory)
