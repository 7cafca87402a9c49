"""Text of attachments, read in a process that may be killed.

Attachments come from anyone, so every file is read by an extraction process
under a time and memory budget (the parse pool of
:mod:`mailarchive.parsing.pool`, pointed at :func:`extract_request`) and with
caps on the text, the work and the bytes unpacked. What a file does to a
reader costs at most that budget and is reported as a failure with its reason.
No Django here: the indexing stage stores the results
(:mod:`mailarchive.services.attachment_text`).
"""

from .kinds import Kind, kind_of
from .request import (
    EMPTY,
    FAILED,
    OK,
    UNSUPPORTED,
    ExtractRequest,
    ExtractResult,
    decode_request,
    encode_request,
)
from .run import extract, extract_request

# The extraction target the indexing stage hands to the parse pool; its
# module loads every reader up front (see .process).
EXTRACT_TARGET = "mailarchive.extract.process:extract_request"
# Raised when a reader improves: texts read by an older version are read
# again by the next reindex.
EXTRACTOR_VERSION = 1

__all__ = [
    "EMPTY",
    "EXTRACTOR_VERSION",
    "EXTRACT_TARGET",
    "FAILED",
    "OK",
    "UNSUPPORTED",
    "ExtractRequest",
    "ExtractResult",
    "Kind",
    "decode_request",
    "encode_request",
    "extract",
    "extract_request",
    "kind_of",
]
