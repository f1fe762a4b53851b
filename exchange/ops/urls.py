from django.urls import path

from exchange.ops import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("ops/dashboard", views.dashboard, name="ops-dashboard"),
    path("ops/dashboard/data", views.dashboard_data, name="ops-dashboard-data"),
]
