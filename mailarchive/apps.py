from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MailArchiveConfig(AppConfig):
    name = "mailarchive"
    verbose_name = _("Mail archive")

    def ready(self) -> None:
        from . import checks  # noqa: F401 (registers the checks)
