from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MailArchiveConfig(AppConfig):
    name = "mailarchive"
    verbose_name = _("Mail archive")

    def ready(self) -> None:
        from spaces.contents import space_contents_register

        from . import checks  # noqa: F401 (registers the checks)
        from .services.space_contents import ARCHIVE_CONTENTS

        space_contents_register(self.name, ARCHIVE_CONTENTS)
