from django.urls import path

from .middleware import PROBES

app_name = "operations"

urlpatterns = [
    path(route.lstrip("/"), view, name=name) for route, (name, view) in PROBES.items()
]
