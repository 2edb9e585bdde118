"""Pages of the customers app (htmx). Mounted at the site root; paths carry their own prefix."""

from django.urls import path

from . import views

app_name = "customers"

urlpatterns = [
    path("customers/", views.customer_search_page, name="search"),
    path("customers/new/", views.customer_create, name="create"),
    path("customers/picker/", views.customer_picker, name="picker"),
    path("customers/picker/new/", views.customer_picker_create, name="picker-create"),
    path("customers/reviews/", views.review_list, name="reviews"),
    path("customers/reviews/<int:review_id>/dismiss/", views.review_dismiss, name="review-dismiss"),
    path("customers/merge/", views.customer_merge, name="merge"),
    path("customers/<int:customer_id>/", views.customer_detail, name="detail"),
    path("customers/<int:customer_id>/edit/", views.customer_edit, name="edit"),
    path("customers/<int:customer_id>/consent/", views.customer_consent, name="consent"),
    path("customers/<int:customer_id>/export/", views.customer_export, name="export"),
    path("customers/<int:customer_id>/erase/", views.customer_erase, name="erase"),
]
