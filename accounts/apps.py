from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Mail accounts")

    def ready(self) -> None:
        from spaces.contents import space_contents_register

        from .services.space_contents import MAIL_ACCOUNT_CONTENTS

        space_contents_register(self.name, MAIL_ACCOUNT_CONTENTS)
