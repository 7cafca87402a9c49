"""manage.py rotatemailpasswords: the earlier name of rotatemailsecrets."""

from __future__ import annotations

from .rotatemailsecrets import Command as RotateSecrets


class Command(RotateSecrets):
    help = "The earlier name of rotatemailsecrets. " + RotateSecrets.help
