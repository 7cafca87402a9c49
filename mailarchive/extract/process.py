"""The extraction target as an extraction process loads it.

Importing this module imports every reader's library, so that a new process
pays for them while it starts (which the pool does not count) rather than in
the time budget of the first file of each kind it reads.
"""

from __future__ import annotations

import docx  # noqa: F401
import odf.opendocument  # noqa: F401
import openpyxl  # noqa: F401
import pptx  # noqa: F401
import pypdf  # noqa: F401
import striprtf.striprtf  # noqa: F401
from lxml import etree  # noqa: F401

from .run import extract_request

__all__ = ["extract_request"]
