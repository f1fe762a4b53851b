from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from exchange.ops import views as ops_views

# Errors raised outside DRF's views (unknown URLs, crashes) keep the API's error body under /api/.
handler400 = "exchange.errors.bad_request"
handler403 = "exchange.errors.permission_denied"
handler404 = "exchange.errors.page_not_found"
handler500 = "exchange.errors.server_error"

urlpatterns = [
    path("", include("exchange.ops.urls")),
    # Before admin.site.urls: the throttled login answers admin:login's path.
    path("admin/login/", ops_views.admin_login),
    path("admin/", admin.site.urls),
    path("api/v1/", include("exchange.accounts.urls")),
    path("api/v1/", include("exchange.ledger.urls")),
    path("api/v1/", include("exchange.markets.urls")),
    path("api/v1/", include("exchange.trading.urls")),
    path("api/v1/", include("exchange.risk.urls")),
    path("api/v1/", include("exchange.custody.urls")),
    path("api/v1/", include("exchange.withdrawals.urls")),
    path("api/v1/", include("exchange.alerts.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    # django_prometheus.urls, restricted to METRICS_ALLOWED_NETWORKS.
    path("metrics", ops_views.metrics, name="prometheus-django-metrics"),
]
