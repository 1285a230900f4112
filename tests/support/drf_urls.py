"""URLs of the DRF adapter's tests: ``@pytest.mark.urls("tests.support.drf_urls")``."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from tests.support import drf_views

urlpatterns: list[URLPattern | URLResolver] = [
    path("permission-only/", drf_views.PermissionOnlyView.as_view()),
    path("permission-behind-session/", drf_views.PermissionBehindSessionView.as_view()),
    path("permission-behind-basic/", drf_views.PermissionBehindBasicView.as_view()),
    path("authenticated/", drf_views.AuthenticatedView.as_view()),
    path("session-first/", drf_views.SessionFirstView.as_view()),
    path("bearer/", drf_views.BearerView.as_view()),
    path("partner-reports/", drf_views.PartnerReportView.as_view()),
    path("key-or-user/", drf_views.KeyOrUserView.as_view()),
    path("key-with-scope/", drf_views.KeyWithScopeView.as_view()),
    path("without-key/", drf_views.WithoutKeyView.as_view()),
    path("organization/", drf_views.OrganizationView.as_view()),
    path("orders/", drf_views.OrderListView.as_view()),
    path("invoices/", drf_views.InvoiceView.as_view()),
    path("scopes-forgotten/", drf_views.ScopesForgottenView.as_view()),
    path("organization-reports/", drf_views.OrganizationReportView.as_view()),
    path("async/authenticated/", drf_views.AsyncAuthenticatedView.as_view()),
    path("async/permission-only/", drf_views.AsyncPermissionOnlyView.as_view()),
    path("async/orders/", drf_views.AsyncOrderListView.as_view()),
    path("async/key-or-user/", drf_views.AsyncKeyOrUserView.as_view()),
    path("async/organization/", drf_views.AsyncOrganizationView.as_view()),
]
