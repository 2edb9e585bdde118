"""REST endpoints of the customers app, mounted under /api/v1/."""

from django.urls import path

from . import api

urlpatterns = [
    path("customers/", api.CustomerListApi.as_view(), name="api-customers"),
    path("customers/merge/", api.CustomerMergeApi.as_view(), name="api-customers-merge"),
    path("customers/match-reviews/", api.MatchReviewListApi.as_view(), name="api-customers-reviews"),
    path(
        "customers/match-reviews/<int:review_id>/dismiss/",
        api.MatchReviewDismissApi.as_view(),
        name="api-customers-review-dismiss",
    ),
    path("customers/<int:customer_id>/", api.CustomerDetailApi.as_view(), name="api-customer"),
    path("customers/<int:customer_id>/consents/", api.CustomerConsentApi.as_view(), name="api-customer-consent"),
    path("customers/<int:customer_id>/loyalty/", api.CustomerLoyaltyApi.as_view(), name="api-customer-loyalty"),
    path("customers/<int:customer_id>/export/", api.CustomerExportApi.as_view(), name="api-customer-export"),
    path("customers/<int:customer_id>/erase/", api.CustomerEraseApi.as_view(), name="api-customer-erase"),
]
