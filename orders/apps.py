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
