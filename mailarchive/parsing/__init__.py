"""Parsing raw e-mail into what the archive stores, shows and indexes.

Pure Python on top of the standard library's email package, charset-normalizer
and tnefparse; no Django. Every entry point accepts any bytes and never raises.
"""

from .digest import content_digest
from .message import body_text_for_search, parse_message
from .results import ParsedAddress, ParsedAttachment, ParsedMessage

__all__ = [
    "ParsedAddress",
    "ParsedAttachment",
    "ParsedMessage",
    "body_text_for_search",
    "content_digest",
    "parse_message",
]
