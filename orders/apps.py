from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        # Orders copy contact and delivery details: they join the customer's export and erasure.
        from customers.privacy import register_eraser, register_export_section

        from . import selectors, services

        register_export_section("orders", selectors.orders_export_for_customers)
        register_eraser("orders", services.orders_erase_customer_data)

        # A pickup becomes ready as soon as its transfer is received, not at the next minute's sync.
        from transfers.services import transfer_received

        transfer_received.connect(_sync_pickups_after_commit, dispatch_uid="orders-sync-pickups")


def _sync_pickups_after_commit(sender: object, transfer_id: int, **kwargs: object) -> None:
    from django.db import transaction

    from .tasks import fulfilments_sync_transfers_task

    transaction.on_commit(fulfilments_sync_transfers_task.delay)
