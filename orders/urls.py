"""Pages of the orders app (htmx). Mounted at the site root; paths carry their own prefix."""

from django.urls import path

from . import views

app_name = "orders"

urlpatterns = [
    # The sale on the tablet.
    path("sell/", views.sell, name="sell"),
    path("sell/search/", views.sell_search, name="sell-search"),
    path("sell/scan/", views.sell_scan, name="sell-scan"),
    path("sell/add/", views.sell_add, name="sell-add"),
    path("sell/line/<int:line_id>/", views.sell_line, name="sell-line"),
    path("sell/line/<int:line_id>/remove/", views.sell_line_remove, name="sell-line-remove"),
    path("sell/line/<int:line_id>/hold/", views.sell_line_hold, name="sell-line-hold"),
    path("sell/line/<int:line_id>/discount/", views.sell_line_discount, name="sell-line-discount"),
    path("sell/discount/", views.sell_order_discount, name="sell-discount"),
    path("sell/customer/", views.sell_customer, name="sell-customer"),
    path("sell/address/", views.sell_address, name="sell-address"),
    path("sell/clear/", views.sell_clear, name="sell-clear"),
    path("sell/checkout/", views.sell_checkout, name="sell-checkout"),
    # Orders.
    path("orders/", views.order_list, name="list"),
    path("orders/customer/<int:customer_id>/history/", views.customer_history, name="customer-history"),
    path("orders/<str:number>/", views.order_detail, name="detail"),
    path("orders/<str:number>/receipt/", views.receipt, name="receipt"),
    path("orders/<str:number>/receipt/email/", views.receipt_email, name="receipt-email"),
    path("orders/<str:number>/cancel/", views.order_cancel, name="cancel"),
    # Fulfilment and pickups.
    path("fulfil/", views.fulfil_queue, name="fulfil"),
    path("fulfil/<int:fulfilment_id>/", views.fulfil_detail, name="fulfil-detail"),
    path("fulfil/<int:fulfilment_id>/pick/", views.fulfil_pick, name="fulfil-pick"),
    path("fulfil/<int:fulfilment_id>/pack/", views.fulfil_pack, name="fulfil-pack"),
    path("fulfil/<int:fulfilment_id>/ship/", views.fulfil_ship, name="fulfil-ship"),
    path("fulfil/<int:fulfilment_id>/deliver/", views.fulfil_deliver, name="fulfil-deliver"),
    path("fulfil/<int:fulfilment_id>/ready/", views.fulfil_ready, name="fulfil-ready"),
    path("fulfil/<int:fulfilment_id>/collect/", views.fulfil_collect, name="fulfil-collect"),
    path("fulfil/<int:fulfilment_id>/new-code/", views.fulfil_resend_code, name="fulfil-resend-code"),
    path("fulfil/<int:fulfilment_id>/pick-list/", views.pick_list, name="pick-list"),
    path("fulfil/<int:fulfilment_id>/packing-slip/", views.packing_slip, name="packing-slip"),
    path("pickups/", views.pickups, name="pickups"),
    # Returns and exchanges at any store.
    path("returns/", views.returns, name="returns"),
    path("returns/<str:number>/", views.return_submit, name="return-submit"),
]
