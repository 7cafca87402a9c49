#!/usr/bin/env python
"""Django's command-line utility for mailarchive."""

import os
import sys


def main() -> None:
    from mailarchive.privacy import keep_new_files_private

    keep_new_files_private()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailarchive.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
