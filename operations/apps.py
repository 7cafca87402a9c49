from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OperationsConfig(AppConfig):
    """What operators watch: Prometheus metrics and the load balancers' probes."""

    name = "operations"
    verbose_name = _("operations")

    def ready(self) -> None:
        from . import checks  # noqa: F401 (registers the checks)
