"""The sourcing rules, as pure functions over candidates."""

from orders.sourcing import Candidate, source_collect, source_ship, source_ship_order, where_else


def wh(location_id, available, distance=50.0, code=None):
    return Candidate(
        location_id,
        code or f"wh{location_id}",
        f"Warehouse {location_id}",
        "warehouse",
        available,
        ships_to_customers=True,
        distance_km=distance,
    )


def st(location_id, available, distance=5.0, ships=True, code=None):
    return Candidate(
        location_id,
        code or f"st{location_id}",
        f"Store {location_id}",
        "store",
        available,
        ships_to_customers=ships,
        offers_pickup=True,
        distance_km=distance,
    )


def test_ship_prefers_a_warehouse_over_a_nearer_store():
    plan = source_ship([st(1, 5, distance=1), wh(2, 5, distance=300)], 2)

    assert [(a.location_id, a.quantity) for a in plan.allocations] == [(2, 2)]


def test_ship_falls_back_to_the_nearest_store_that_ships():
    plan = source_ship([wh(1, 1), st(2, 5, distance=30), st(3, 5, distance=10), st(4, 9, distance=1, ships=False)], 2)

    assert [a.location_id for a in plan.allocations] == [3]


def test_ship_prefers_a_source_already_shipping_for_the_order():
    plan = source_ship([st(2, 5, distance=10), st(3, 5, distance=30)], 1, already_used=[3])

    assert [a.location_id for a in plan.allocations] == [3]


def test_ship_splits_only_when_no_single_source_has_enough():
    plan = source_ship([wh(1, 2), st(2, 3, distance=1), st(3, 1, distance=2)], 4)

    assert plan.complete
    assert sorted((a.location_id, a.quantity) for a in plan.allocations) == [(1, 1), (2, 3)]


def test_ship_reports_the_shortfall():
    plan = source_ship([wh(1, 1)], 3)

    assert not plan.complete and plan.shortfall == 2


def test_order_sourcing_uses_the_fewest_shipments():
    # The warehouse holds lines 1 and 2; store 3 holds all three: warehouse first for what it can,
    # then one more shipment for the third line.
    candidates = {
        10: [wh(1, 5), st(3, 5)],
        11: [wh(1, 5), st(3, 5)],
        12: [st(3, 5), st(4, 5, distance=1)],
    }

    plans = source_ship_order([(10, 1), (11, 1), (12, 1)], candidates)

    assert [p.allocations[0].location_id for p in plans] == [1, 1, 4]


def test_collect_here_when_the_pickup_store_has_it():
    plan = source_collect([st(1, 1, distance=0), wh(2, 9)], 1, pickup_location_id=1)

    assert [(a.location_id, a.needs_transfer, a.eta_days) for a in plan.allocations] == [(1, False, 0)]


def test_collect_from_the_nearest_other_location_with_a_transfer():
    plan = source_collect([st(1, 0), st(2, 3, distance=40), st(3, 3, distance=12)], 2, pickup_location_id=1)

    assert [(a.location_id, a.needs_transfer) for a in plan.allocations] == [(3, True)]
    assert plan.allocations[0].eta_days == 2


def test_where_else_lists_the_other_locations():
    text = where_else([st(1, 0), st(2, 3, code="b"), wh(3, 5)], exclude=[1])

    assert text == "Available at Warehouse 3 (5), Store 2 (3)."
    assert where_else([], exclude=[]) == "Not available at any other location."
