"""Demo data for inventory: a Texas fashion retailer's network, catalogue and opening stock.

Called by `manage.py seed_demo` (see docs/DEMO_DATA.md for the contract every app's demo module
follows): `seed(options, rng, stdout)`.

- Locations: one central warehouse (ships online orders, sells online, sends transfers) and
  `options["stores"]` stores spread over Texas cities, each with real-ish coordinates.
- Catalogue: products built from word lists (tops, bottoms, dresses, outerwear, shoes,
  accessories) in sizes XS-XL, 36-45 or one size and 2-4 colours, until `options["variants"]`
  variants exist. SKUs read STYLE-COLOUR-SIZE; barcodes are EAN-13 under a company prefix,
  numbered in generation order so a bigger catalogue extends a smaller one.
- Stock: opening balances through `services.stock_opening_balance_bulk` (one receipt movement per
  level, so the ledger sums to the levels): deep at the warehouse, shallow in stores, with zeros
  and low levels; safety stock on a few levels through `services.stock_set_safety`.

Idempotent: every row has a natural key (location code, style, SKU, opening-balance key) and rows
that exist are left alone, so a second run writes nothing. Deterministic: the plans are pure
functions of the random generator, whose streams are split up front so the number of stores does
not change the catalogue.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from django.db import connection, connections, transaction

from .barcodes import make_ean13
from .models import Location, LocationKind, Product, StockLevel, StockMovement, Variant
from .services import SystemActor, stock_opening_balance_bulk, stock_set_safety

DEFAULT_STORES = 8
DEFAULT_VARIANTS = 3000
MAX_STORES = 500
PARALLEL_MIN_PAIRS = 200_000  # below this, forking costs more than it saves
# A 6-digit GS1 company prefix leaves 6 digits of item reference before the check digit.
COMPANY_PREFIX = "061414"
MAX_VARIANTS = 10 ** (12 - len(COMPANY_PREFIX)) - 1

WAREHOUSE_CODE = "wh-central"
FIRST_STORE_CODE = "aus-01"
TIME_ZONE = "America/Chicago"
TAX_RATE = Decimal("0.0825")  # Texas: 6.25% state + 2% local, the same in every city here
OPENING_KEY_PREFIX = "demo-opening"
SAFETY_KEY_PREFIX = "demo-safety"
DEMO_ACTOR = SystemActor("demo-data")
ONE_SIZE = "One size"


class Writer(Protocol):
    def write(self, msg: str, /) -> Any: ...


# --- Locations -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    name: str
    street: str
    postcode: str
    latitude: str
    longitude: str


@dataclass(frozen=True)
class City:
    code: str
    name: str
    latitude: float
    longitude: float
    postcode: str
    sites: tuple[Site, ...]


CITIES: tuple[City, ...] = (
    City(
        "aus",
        "Austin",
        30.2672,
        -97.7431,
        "78701",
        (
            Site("Downtown", "301 Congress Ave", "78701", "30.265500", "-97.744000"),
            Site("The Domain", "11601 Century Oaks Terrace", "78758", "30.402100", "-97.725300"),
            Site("South Congress", "1400 S Congress Ave", "78704", "30.250000", "-97.749400"),
            Site("Mueller", "1801 E 51st St", "78723", "30.299000", "-97.706000"),
            Site("Barton Creek", "2901 S Capital of Texas Hwy", "78746", "30.257600", "-97.808000"),
        ),
    ),
    City(
        "dal",
        "Dallas",
        32.7767,
        -96.7970,
        "75201",
        (
            Site("Uptown", "2500 McKinney Ave", "75201", "32.799000", "-96.801000"),
            Site("Deep Ellum", "2700 Elm St", "75226", "32.784300", "-96.783600"),
            Site("NorthPark", "8687 N Central Expy", "75225", "32.868600", "-96.773700"),
            Site("Bishop Arts", "408 N Bishop Ave", "75208", "32.749000", "-96.828400"),
            Site("Galleria", "13350 Dallas Pkwy", "75240", "32.930600", "-96.819700"),
        ),
    ),
    City(
        "hou",
        "Houston",
        29.7604,
        -95.3698,
        "77002",
        (
            Site("Galleria", "5085 Westheimer Rd", "77056", "29.739000", "-95.463000"),
            Site("The Heights", "250 W 19th St", "77008", "29.803000", "-95.401000"),
            Site("Rice Village", "2400 Rice Blvd", "77005", "29.716000", "-95.415000"),
            Site("Montrose", "1500 Westheimer Rd", "77006", "29.744000", "-95.397000"),
            Site("Memorial City", "303 Memorial City Way", "77024", "29.781000", "-95.542000"),
        ),
    ),
    City(
        "sat",
        "San Antonio",
        29.4241,
        -98.4936,
        "78205",
        (
            Site("The Pearl", "303 Pearl Pkwy", "78215", "29.442000", "-98.481000"),
            Site("La Cantera", "15900 La Cantera Pkwy", "78256", "29.593000", "-98.616000"),
            Site("North Star", "7400 San Pedro Ave", "78216", "29.518000", "-98.499000"),
        ),
    ),
    City(
        "ftw",
        "Fort Worth",
        32.7555,
        -97.3308,
        "76102",
        (
            Site("Sundance Square", "420 Main St", "76102", "32.755000", "-97.332000"),
            Site("Clearfork", "5188 Monahans Ave", "76109", "32.704000", "-97.396000"),
            Site("Magnolia", "1000 W Magnolia Ave", "76104", "32.730500", "-97.334000"),
        ),
    ),
)
STREETS = ("Main St", "Oak Ave", "Commerce St", "Market St", "Elm St", "Travis St", "Lamar Blvd", "Park Pl")


@dataclass(frozen=True)
class LocationPlan:
    code: str
    fields: dict[str, Any]
    flagship: bool = False


WAREHOUSE_PLAN = LocationPlan(
    WAREHOUSE_CODE,
    {
        "name": "Central Warehouse",
        "kind": LocationKind.WAREHOUSE,
        "address_line1": "1200 Distribution Dr",
        "city": "Lancaster",
        "postcode": "75146",
        "country": "US",
        "latitude": Decimal("32.592100"),
        "longitude": Decimal("-96.756100"),
        "time_zone": TIME_ZONE,
        "sells_in_store": False,
        "ships_to_customers": True,
        "offers_pickup": False,
        "sends_transfers": True,
        "receives_transfers": True,
        "sells_online": True,
        "tax_rate": TAX_RATE,
    },
)


def plan_locations(*, stores: int, rng: random.Random) -> list[LocationPlan]:
    """The warehouse, then `stores` stores dealt round-robin over the cities.

    Up to 15 stores use Austin, Dallas and Houston (8 stores: 3, 3, 2); more stores add San
    Antonio and Fort Worth. A city's first store is its flagship and ships to customers; every
    store sells in store, offers pickup and sends and receives transfers. Past a city's named
    sites, stores get numbered names and coordinates scattered around the centre.
    """
    cities = CITIES[:3] if stores <= 15 else CITIES
    plans = [WAREHOUSE_PLAN]
    for index in range(stores):
        city = cities[index % len(cities)]
        number = index // len(cities) + 1
        if number <= len(city.sites):
            site = city.sites[number - 1]
            name, street, postcode = f"{city.name} {site.name}", site.street, site.postcode
            latitude, longitude = Decimal(site.latitude), Decimal(site.longitude)
        else:
            name = f"{city.name} #{number}"
            street = f"{rng.randint(100, 9900)} {rng.choice(STREETS)}"
            postcode = city.postcode
            latitude = Decimal(f"{city.latitude + rng.uniform(-0.15, 0.15):.6f}")
            longitude = Decimal(f"{city.longitude + rng.uniform(-0.15, 0.15):.6f}")
        flagship = number == 1
        plans.append(
            LocationPlan(
                f"{city.code}-{number:02d}",
                {
                    "name": name,
                    "kind": LocationKind.STORE,
                    "address_line1": street,
                    "city": city.name,
                    "postcode": postcode,
                    "country": "US",
                    "latitude": latitude,
                    "longitude": longitude,
                    "time_zone": TIME_ZONE,
                    "sells_in_store": True,
                    "ships_to_customers": flagship,
                    "offers_pickup": True,
                    "sends_transfers": True,
                    "receives_transfers": True,
                    "sells_online": False,
                    "tax_rate": TAX_RATE,
                },
                flagship=flagship,
            )
        )
    return plans


def store_codes(stores: int) -> list[str]:
    """The demo store codes for `stores` stores, in plan order (the first is FIRST_STORE_CODE)."""
    return [plan.code for plan in plan_locations(stores=stores, rng=random.Random(0))[1:]]


# --- Catalogue -----------------------------------------------------------------------------------

APPAREL_SIZES = ("XS", "S", "M", "L", "XL")
SHOE_SIZE_RANGES = (("36", "37", "38", "39", "40", "41"), ("40", "41", "42", "43", "44", "45"))
ALL_SHOE_SIZES = tuple(str(size) for size in range(36, 46))

CORE_COLOURS = (("BLK", "Black"), ("WHT", "White"), ("NVY", "Navy"), ("GRY", "Heather Grey"), ("BEI", "Beige"))
SEASON_COLOURS = {
    "SS26": (
        ("SKY", "Sky Blue"),
        ("SND", "Sand"),
        ("BLS", "Blush"),
        ("SAG", "Sage"),
        ("ECR", "Ecru"),
        ("LIL", "Lilac"),
        ("COB", "Cobalt"),
        ("TER", "Terracotta"),
    ),
    "AW26": (
        ("CHR", "Charcoal"),
        ("BRG", "Burgundy"),
        ("FOR", "Forest Green"),
        ("RST", "Rust"),
        ("MUS", "Mustard"),
        ("BRN", "Chocolate"),
        ("OLV", "Olive"),
        ("CML", "Camel"),
    ),
}

BRANDS = (
    "Northwind",
    "Alder & Co.",
    "Maren",
    "Loom & Line",
    "Sable",
    "Field Day",
    "Halcyon",
    "Kestrel",
    "Common Thread",
    "Tidewater",
    "Juniper Row",
    "Ostara",
)


@dataclass(frozen=True)
class Category:
    slug: str
    code: str
    weight: float
    adjectives: tuple[str, ...]
    items: tuple[tuple[str, tuple[str, ...]], ...]  # (item, materials it comes in)
    price_range: tuple[int, int]
    autumn_share: float  # how often a product is AW26 rather than SS26


CATEGORIES: tuple[Category, ...] = (
    Category(
        "tops",
        "TP",
        0.28,
        ("Relaxed", "Slim", "Oversized", "Cropped", "Classic", "Essential", "Boxy", "Fitted", "Washed", "Everyday"),
        (
            ("T-Shirt", ("Cotton", "Organic Cotton", "Jersey", "Slub")),
            ("Shirt", ("Linen", "Poplin", "Oxford", "Chambray", "Flannel")),
            ("Blouse", ("Silk", "Crepe", "Viscose", "Linen")),
            ("Polo", ("Pique", "Cotton", "Knit")),
            ("Tank Top", ("Ribbed", "Cotton", "Jersey")),
            ("Sweater", ("Merino", "Cashmere-Blend", "Cable-Knit", "Cotton")),
            ("Cardigan", ("Merino", "Mohair-Blend", "Cotton")),
            ("Hoodie", ("Fleece", "Loopback", "Organic Cotton")),
            ("Henley", ("Waffle-Knit", "Cotton", "Slub")),
        ),
        (19, 89),
        0.45,
    ),
    Category(
        "bottoms",
        "BT",
        0.18,
        ("Straight", "Slim", "Wide-Leg", "Relaxed", "Tapered", "High-Rise", "Pleated", "Classic"),
        (
            ("Jeans", ("Denim", "Stretch Denim", "Rigid Denim", "Black Denim")),
            ("Chinos", ("Cotton Twill", "Stretch Twill")),
            ("Trousers", ("Wool-Blend", "Linen", "Crepe", "Cotton")),
            ("Shorts", ("Linen", "Denim", "Cotton Twill")),
            ("Skirt", ("Satin", "Denim", "Pleated Crepe", "Linen")),
            ("Joggers", ("Fleece", "Jersey", "Ripstop")),
            ("Cargo Pants", ("Ripstop", "Cotton Twill")),
        ),
        (39, 129),
        0.5,
    ),
    Category(
        "dresses",
        "DR",
        0.12,
        ("Tiered", "Belted", "Ruched", "Classic", "Flowing", "Fitted", "Smocked"),
        (
            ("Midi Dress", ("Satin", "Crepe", "Linen", "Viscose")),
            ("Maxi Dress", ("Viscose", "Cotton Voile", "Linen")),
            ("Shirt Dress", ("Poplin", "Denim", "Linen")),
            ("Slip Dress", ("Satin", "Silk")),
            ("Wrap Dress", ("Jersey", "Crepe", "Viscose")),
            ("Mini Dress", ("Broderie", "Cotton", "Knit")),
            ("Knit Dress", ("Ribbed", "Merino")),
        ),
        (49, 169),
        0.4,
    ),
    Category(
        "outerwear",
        "OW",
        0.08,
        ("Classic", "Oversized", "Cropped", "Longline", "Tailored", "Lightweight", "Quilted"),
        (
            ("Jacket", ("Denim", "Suede", "Leather", "Cotton Twill", "Corduroy")),
            ("Trench Coat", ("Cotton Gabardine", "Water-Repellent")),
            ("Parka", ("Nylon", "Recycled Nylon")),
            ("Blazer", ("Wool", "Linen", "Crepe")),
            ("Bomber Jacket", ("Nylon", "Satin", "Suede")),
            ("Overshirt", ("Wool-Blend", "Corduroy", "Cotton Twill")),
            ("Puffer Jacket", ("Recycled Nylon", "Matte Nylon")),
            ("Coat", ("Wool", "Wool-Blend", "Cashmere-Blend")),
        ),
        (79, 329),
        0.8,
    ),
    Category(
        "shoes",
        "SH",
        0.09,
        ("Classic", "Everyday", "Chunky", "Minimal", "Retro", "Lug-Sole"),
        (
            ("Sneakers", ("Leather", "Canvas", "Suede", "Knit")),
            ("Loafers", ("Leather", "Suede")),
            ("Chelsea Boots", ("Leather", "Suede")),
            ("Sandals", ("Leather", "Woven Leather")),
            ("Derby Shoes", ("Leather", "Patent Leather")),
            ("Ankle Boots", ("Leather", "Suede")),
            ("Espadrilles", ("Canvas", "Linen")),
            ("Mules", ("Leather", "Suede")),
        ),
        (59, 219),
        0.5,
    ),
    Category(
        "accessories",
        "AC",
        0.25,
        ("Classic", "Everyday", "Mini", "Oversized", "Essential", "Slim"),
        (
            ("Tote Bag", ("Canvas", "Leather", "Recycled Nylon")),
            ("Crossbody Bag", ("Leather", "Nylon", "Suede")),
            ("Scarf", ("Wool", "Cashmere-Blend", "Silk", "Modal")),
            ("Beanie", ("Merino", "Ribbed Knit", "Wool")),
            ("Belt", ("Leather", "Suede", "Woven")),
            ("Baseball Cap", ("Cotton Twill", "Corduroy", "Washed Cotton")),
            ("Sunglasses", ("Acetate", "Metal")),
            ("Wallet", ("Leather", "Pebbled Leather")),
            ("Bucket Hat", ("Cotton Twill", "Denim", "Terry")),
            ("Card Holder", ("Leather", "Suede")),
        ),
        (15, 119),
        0.5,
    ),
)
CATEGORY_BY_SLUG = {category.slug: category for category in CATEGORIES}

FITS = {
    "tops": "Cut for easy layering; true to size.",
    "bottoms": "Sits at the waist with a clean line; true to size.",
    "dresses": "Falls just right for day or evening; true to size.",
    "outerwear": "Roomy enough for a knit underneath; take your usual size.",
    "shoes": "Cushioned insole; EU sizes, true to size.",
    "accessories": "One size.",
}


@dataclass(frozen=True)
class VariantPlan:
    sku: str
    barcode: str
    size: str
    colour: str
    price: Decimal


@dataclass
class ProductPlan:
    style: str
    name: str
    brand: str
    category: str
    season: str
    description: str
    variants: list[VariantPlan] = field(default_factory=list)


def _price(rng: random.Random, low: int, high: int) -> Decimal:
    """A shelf price between low and high ending in .99 or .00 (tax included)."""
    whole = round(rng.uniform(low, high) / 5) * 5
    return Decimal(whole - 1) + Decimal("0.99") if rng.random() < 0.7 else Decimal(whole)


def _sizes(category: Category, rng: random.Random) -> tuple[str, ...]:
    if category.slug == "accessories":
        return (ONE_SIZE,)
    if category.slug == "shoes":
        return ALL_SHOE_SIZES if rng.random() < 0.3 else rng.choice(SHOE_SIZE_RANGES)
    return APPAREL_SIZES


def plan_catalogue(*, variants: int, rng: random.Random) -> list[ProductPlan]:
    """Products until exactly `variants` variants exist, in a fixed generation order.

    Each product draws a category (weighted), a name (adjective + material + item, unique while
    the word lists last), a brand, a season, a price, 2-4 colours (core plus seasonal palette) and
    its size run. Variant n (from 1) gets barcode COMPANY_PREFIX + n + check digit. The last product
    keeps only the variants that fit, so a plan for more variants starts with this one.
    """
    plans: list[ProductPlan] = []
    counters = {category.code: 1000 for category in CATEGORIES}
    names: set[str] = set()
    weights = [category.weight for category in CATEGORIES]
    sequence = 0
    while sequence < variants:
        category = rng.choices(CATEGORIES, weights)[0]
        season = "AW26" if rng.random() < category.autumn_share else "SS26"
        name = ""
        material = ""
        for _attempt in range(8):
            item, materials = rng.choice(category.items)
            material = rng.choice(materials)
            name = f"{rng.choice(category.adjectives)} {material} {item}"
            if name not in names:
                break
        names.add(name)
        brand = rng.choice(BRANDS)
        counters[category.code] += 1
        style = f"{category.code}{counters[category.code]}"
        price = _price(rng, *category.price_range)
        palette = CORE_COLOURS + SEASON_COLOURS[season]
        colours = rng.sample(palette, rng.choices((2, 3, 4), (0.45, 0.35, 0.2))[0])
        sizes = _sizes(category, rng)
        plan = ProductPlan(
            style=style,
            name=name,
            brand=brand,
            category=category.slug,
            season=season,
            description=f"{name} in {material.lower()} by {brand}. {FITS[category.slug]}",
        )
        for colour_code, colour in colours:
            for size in sizes:
                if sequence >= variants:
                    break
                sequence += 1
                size_code = "OS" if size == ONE_SIZE else size
                plan.variants.append(
                    VariantPlan(
                        sku=f"{style}-{colour_code}-{size_code}",
                        barcode=make_ean13(f"{COMPANY_PREFIX}{sequence:0{12 - len(COMPANY_PREFIX)}d}"),
                        size=size,
                        colour=colour,
                        price=price,
                    )
                )
        plans.append(plan)
    return plans


# --- Stock ---------------------------------------------------------------------------------------

SIZE_WEIGHTS = {"XS": 0.5, "S": 0.9, "M": 1.3, "L": 1.1, "XL": 0.6, ONE_SIZE: 1.4}
SIZE_WEIGHTS.update(
    {"36": 0.4, "37": 0.7, "38": 1.0, "39": 1.2, "40": 1.3, "41": 1.3, "42": 1.2, "43": 1.0, "44": 0.7, "45": 0.4}
)
CATEGORY_DEPTH = {"tops": 1.2, "bottoms": 1.0, "dresses": 0.8, "outerwear": 0.6, "shoes": 0.7, "accessories": 1.0}


@dataclass(frozen=True)
class StockRow:
    location_id: int
    variant_id: int
    on_hand: int


def plan_stock(
    *,
    catalogue: Sequence[ProductPlan],
    variant_ids: Mapping[str, int],
    warehouse_id: int,
    stores: Sequence[tuple[int, bool]],
    rng: random.Random,
) -> Iterator[tuple[int, int, int]]:
    """Yield (location_id, variant_id, on_hand) for every variant at every location, location by location.

    Depth follows the product's popularity (log-normal), its size on the size curve and its category.
    The warehouse holds ~30 of a typical variant: 3% are out, 5% low (1-3). A store holds ~3:
    20% carry none (not ranged or sold out), 10% are down to the last one; flagships hold more.
    Zeros are yielded too (the bulk loader skips them: no level means nothing on hand).

    Each location draws from its own stream (the n-th location's depends only on the seed, n and
    the catalogue), so adding stores leaves the existing stores' figures as they were, and
    locations can be loaded in any order or in parallel.
    """
    weights, base = _stock_weights(catalogue=catalogue, variant_ids=variant_ids, rng=rng)
    yield from _location_stock(weights=weights, base=base, index=0, location_id=warehouse_id, flagship=False)
    for index, (location_id, flagship) in enumerate(stores, start=1):
        yield from _location_stock(weights=weights, base=base, index=index, location_id=location_id, flagship=flagship)


def _stock_weights(
    *, catalogue: Sequence[ProductPlan], variant_ids: Mapping[str, int], rng: random.Random
) -> tuple[list[tuple[int, float]], int]:
    """(variant_id, relative depth) for every variant in plan order, and the base of the location streams."""
    weights: list[tuple[int, float]] = []
    for product in catalogue:
        depth = min(3.0, max(0.3, rng.lognormvariate(0, 0.5))) * CATEGORY_DEPTH[product.category]
        weights.extend(
            (variant_ids[variant.sku], depth * SIZE_WEIGHTS.get(variant.size, 1.0)) for variant in product.variants
        )
    return weights, rng.getrandbits(64)


def _location_stock(
    *, weights: Sequence[tuple[int, float]], base: int, index: int, location_id: int, flagship: bool
) -> Iterator[tuple[int, int, int]]:
    """The rows of location number `index` (0: the warehouse) from its own stream."""
    stream = random.Random(base + index)
    if index == 0:
        for variant_id, weight in weights:
            roll = stream.random()
            if roll < 0.03:
                quantity = 0
            elif roll < 0.08:
                quantity = stream.randint(1, 3)
            else:
                quantity = max(4, round(30 * weight * stream.uniform(0.6, 1.4)))
            yield location_id, variant_id, quantity
        return
    store_factor = 1.4 if flagship else stream.uniform(0.7, 1.1)
    for variant_id, weight in weights:
        roll = stream.random()
        if roll < 0.2:
            quantity = 0
        elif roll < 0.3:
            quantity = 1
        else:
            quantity = max(1, round(3 * weight * store_factor * stream.uniform(0.5, 1.5)))
        yield location_id, variant_id, quantity


# --- Seeding -------------------------------------------------------------------------------------


def _say(options: Mapping[str, Any], stdout: Writer) -> Callable[[str], object]:
    if options.get("verbosity", 1) >= 1:
        return lambda message: stdout.write(f"  inventory: {message}")
    return lambda message: None


def seed_locations(*, stores: int, rng: random.Random) -> tuple[int, list[Location]]:
    """Create the planned locations that do not exist (by code). Returns (created, all planned)."""
    plans = plan_locations(stores=stores, rng=rng)
    codes = [plan.code for plan in plans]
    existing = set(Location.objects.filter(code__in=codes).values_list("code", flat=True))
    with transaction.atomic():
        Location.objects.bulk_create(
            [Location(code=plan.code, **plan.fields) for plan in plans if plan.code not in existing]
        )
    by_code = Location.objects.in_bulk(codes, field_name="code")
    return len(plans) - len(existing), [by_code[code] for code in codes]


def seed_catalogue(*, variants: int, rng: random.Random) -> tuple[int, int, list[ProductPlan], dict[str, int]]:
    """Create the planned products (by style) and variants (by SKU) that do not exist.

    A barcode already used by a variant outside the plan is left off the new variant rather than
    failing the whole seed. Returns (products created, variants created, the plan, sku -> id).
    """
    plans = plan_catalogue(variants=variants, rng=rng)
    with transaction.atomic():
        style_ids = dict(Product.objects.values_list("style", "id"))
        Product.objects.bulk_create(
            [
                Product(
                    style=plan.style,
                    name=plan.name,
                    brand=plan.brand,
                    category=plan.category,
                    season=plan.season,
                    description=plan.description,
                )
                for plan in plans
                if plan.style not in style_ids
            ],
            batch_size=1000,
        )
        products_created = sum(1 for plan in plans if plan.style not in style_ids)
        style_ids = dict(Product.objects.values_list("style", "id"))
        sku_ids = dict(Variant.objects.values_list("sku", "id"))
        taken = set(Variant.objects.exclude(barcode=None).values_list("barcode", flat=True))
        fresh = [
            Variant(
                product_id=style_ids[plan.style],
                sku=variant.sku,
                barcode=variant.barcode if variant.barcode not in taken else None,
                size=variant.size,
                colour=variant.colour,
                price=variant.price,
            )
            for plan in plans
            for variant in plan.variants
            if variant.sku not in sku_ids
        ]
        Variant.objects.bulk_create(fresh, batch_size=2000)
    if fresh:
        sku_ids = dict(Variant.objects.values_list("sku", "id"))
    return products_created, len(fresh), plans, sku_ids


def seed_stock(
    *,
    catalogue: Sequence[ProductPlan],
    variant_ids: Mapping[str, int],
    locations: Sequence[Location],
    rng: random.Random,
    say: Callable[[str], object],
    jobs: int = 0,
) -> tuple[int, int]:
    """Load opening balances for levels that do not exist, then safety stock on a few.

    `jobs` > 1 loads the locations in that many forked processes on PostgreSQL (0: one per CPU, up
    to 4, from PARALLEL_MIN_PAIRS pairs on): the loader's time goes into building ORM rows, so on a
    big load the processes keep every core busy. Any location order gives the same data.
    Returns (levels loaded, safety stock operations applied).
    """
    warehouse, *stores = locations
    flagships = {plan.code for plan in plan_locations(stores=len(stores), rng=random.Random(0)) if plan.flagship}
    weights, base = _stock_weights(catalogue=catalogue, variant_ids=variant_ids, rng=rng)
    targets = [(index, location.pk, location.code in flagships) for index, location in enumerate(locations)]
    jobs = _stock_jobs(jobs, pairs=len(weights) * len(targets))
    started = time.monotonic()

    def load(share: Sequence[tuple[int, int, bool]], label: str) -> int:
        """Opening balances for `share`, minus the pairs whose level exists, with progress lines.

        The loader skips existing levels too, but reading a location's levels in one query is far
        cheaper than its per-batch check, and a second run then hands it nothing at all.
        """
        total = len(weights) * len(share)

        def rows() -> Iterator[tuple[int, int, int]]:
            count = 0
            for index, location_id, flagship in share:
                stocked = set(StockLevel.objects.filter(location_id=location_id).values_list("variant_id", flat=True))
                for row in _location_stock(
                    weights=weights, base=base, index=index, location_id=location_id, flagship=flagship
                ):
                    count += 1
                    if count % 100_000 == 0:
                        say(f"stock{label}: {count:,} of {total:,} pairs ({time.monotonic() - started:.0f}s)")
                    if row[1] not in stocked:
                        yield row

        return stock_opening_balance_bulk(actor=DEMO_ACTOR, rows=rows(), key_prefix=OPENING_KEY_PREFIX, batch_size=5000)

    shares = [targets[job::jobs] for job in range(jobs)]
    loaded = _in_processes(load, shares) if jobs > 1 else load(targets, "")
    if loaded and connection.vendor == "postgresql":
        # Fresh statistics after a bulk load, as after any restore: without them (autovacuum off or
        # not yet round) the planner guesses and later queries on these tables scan them whole.
        tables = ", ".join(model._meta.db_table for model in (Product, Variant, StockLevel, StockMovement))
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {tables}")
    safety = _seed_safety_stock(catalogue=catalogue, variant_ids=variant_ids, warehouse=warehouse, stores=stores)
    return loaded, safety


def _stock_jobs(jobs: int, *, pairs: int) -> int:
    """How many processes load stock: 1 unless PostgreSQL, outside a transaction, without a pool."""
    parallel_ok = (
        connection.vendor == "postgresql"
        and not connection.in_atomic_block
        and "pool" not in connection.settings_dict.get("OPTIONS", {})
    )
    if not parallel_ok:
        return 1
    if jobs <= 0:
        return min(4, os.cpu_count() or 1) if pairs >= PARALLEL_MIN_PAIRS else 1
    return jobs


def _in_processes(load: Any, shares: Sequence[Sequence[tuple[int, int, bool]]]) -> int:
    """Run `load(share, label)` for each share in a forked process; the sum of what they loaded.

    Connections are closed before forking so each process opens its own. A failed process fails
    the seed; what the others committed stays, and a re-run loads only what is missing.
    """
    context = multiprocessing.get_context("fork")
    results = context.SimpleQueue()
    connections.close_all()

    def work(job: int, share: Sequence[tuple[int, int, bool]]) -> None:
        try:
            results.put((job, load(share, f" (job {job + 1}/{len(shares)})"), ""))
        except BaseException as error:
            results.put((job, 0, f"{type(error).__name__}: {error}"))
            raise
        finally:
            connections.close_all()
            sys.stdout.flush()
            sys.stderr.flush()

    processes = [context.Process(target=work, args=(job, share)) for job, share in enumerate(shares)]
    for process in processes:
        process.start()
    outcomes = [results.get() for _ in processes]
    for process in processes:
        process.join()
    errors = [message for _, _, message in outcomes if message]
    if errors or any(process.exitcode for process in processes):
        raise RuntimeError(f"Loading stock failed: {'; '.join(errors) or 'a loader process died'}")
    return sum(loaded for _, loaded, _ in outcomes)


def _seed_safety_stock(
    *, catalogue: Sequence[ProductPlan], variant_ids: Mapping[str, int], warehouse: Location, stores: Sequence[Location]
) -> int:
    """Hold back a buffer on a few levels: the first variant of every 25th product at the warehouse
    (a quarter of its stock, up to 8) and of every 50th product at the first store (1-2 units).

    Keys name the location code and SKU, so a second run repeats nothing.
    """
    wanted: list[tuple[Location, str, int]] = []
    for index, product in enumerate(catalogue):
        sku = product.variants[0].sku
        if index % 25 == 0:
            wanted.append((warehouse, sku, 8))
        if index % 50 == 0 and stores:
            wanted.append((stores[0], sku, 2))
    levels = {
        (level.location_id, level.variant_id): level
        for level in StockLevel.objects.filter(
            location__in=[warehouse, *stores[:1]], variant_id__in=[variant_ids[sku] for _, sku, _ in wanted]
        )
    }
    applied = 0
    for location, sku, cap in wanted:
        variant_id = variant_ids[sku]
        level = levels.get((location.pk, variant_id))
        if level is None or level.safety_stock or level.on_hand < 4:
            continue
        operation = stock_set_safety(
            actor=DEMO_ACTOR,
            location_id=location.pk,
            variant_id=variant_id,
            safety_stock=min(cap, max(1, level.on_hand // 4)),
            idempotency_key=f"{SAFETY_KEY_PREFIX}:{location.code}:{sku}",
        )
        applied += 0 if operation.duplicate else 1
    return applied


def seed(options: Mapping[str, Any], rng: random.Random, stdout: Writer) -> None:
    """Seed locations, the catalogue and opening stock (see the module docstring)."""
    say = _say(options, stdout)
    stores = int(options.get("stores") or DEFAULT_STORES)
    variants = int(options.get("variants") or DEFAULT_VARIANTS)
    if not 1 <= stores <= MAX_STORES:
        raise ValueError(f"--stores must be between 1 and {MAX_STORES}.")
    if not 1 <= variants <= MAX_VARIANTS:
        raise ValueError(f"--variants must be between 1 and {MAX_VARIANTS:,}.")
    # Split the stream up front: each part's data depends only on the seed and its own inputs.
    location_rng, catalogue_rng, stock_rng = (random.Random(rng.getrandbits(64)) for _ in range(3))

    created, locations = seed_locations(stores=stores, rng=location_rng)
    cities = sorted({location.city for location in locations[1:]})
    if created:
        say(f"locations: {created} created (1 warehouse, {stores} stores in {', '.join(cities)})")
    else:
        say(f"locations: already seeded ({len(locations)})")

    products_created, variants_created, catalogue, variant_ids = seed_catalogue(variants=variants, rng=catalogue_rng)
    if variants_created or products_created:
        say(f"catalogue: {products_created:,} products and {variants_created:,} variants created")
    else:
        say(f"catalogue: already seeded ({len(catalogue):,} products, {variants:,} variants)")

    started = time.monotonic()
    loaded, safety = seed_stock(
        catalogue=catalogue,
        variant_ids=variant_ids,
        locations=locations,
        rng=stock_rng,
        say=say,
        jobs=int(options.get("jobs") or 0),
    )
    if loaded or safety:
        say(
            f"stock: {loaded:,} opening balances loaded, safety stock on {safety} levels"
            f" ({time.monotonic() - started:.1f}s)"
        )
    else:
        say("stock: already seeded")
