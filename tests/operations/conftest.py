"""The mail account fixtures, for metrics read after real polls."""

from tests.accounts.conftest import mail_settings, make_account

__all__ = ["mail_settings", "make_account"]
