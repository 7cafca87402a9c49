"""What the API says about each resource, and what it accepts.

Serializers only shape data: every read comes from a selector, every write
goes through a service. Times are ISO 8601 in UTC; secrets are write-only.
"""

from .accounts import (
    ConnectionTestSerializer,
    EnabledSerializer,
    MailAccountHealthSerializer,
    MailAccountListSerializer,
    MailAccountSerializer,
    MailAccountUpdateSerializer,
    PollRunSerializer,
)
from .common import (
    LEVEL_CHOICES,
    LEVEL_NAMES,
    LEVELS_BY_NAME,
    ProblemSerializer,
    StrictSerializer,
    UtcDateTimeField,
    absolute,
    api_url,
    level_name,
)
from .imports import ImportListSerializer, ImportSerializer, ImportUploadSerializer
from .mail import (
    AttachmentSerializer,
    MessageListItemSerializer,
    MessageListQuery,
    MessagePageSerializer,
    MessageSerializer,
    MessageSummarySerializer,
    PageQuery,
    SearchHitSerializer,
    SearchResultsSerializer,
    ThreadSerializer,
    TrashedMessageSerializer,
    TrashPageSerializer,
)
from .spaces import (
    GrantListSerializer,
    GrantSerializer,
    GrantWriteSerializer,
    MeSerializer,
    SpaceListSerializer,
    SpaceSerializer,
)

__all__ = [
    "LEVELS_BY_NAME",
    "LEVEL_CHOICES",
    "LEVEL_NAMES",
    "AttachmentSerializer",
    "ConnectionTestSerializer",
    "EnabledSerializer",
    "GrantListSerializer",
    "GrantSerializer",
    "GrantWriteSerializer",
    "ImportListSerializer",
    "ImportSerializer",
    "ImportUploadSerializer",
    "MailAccountHealthSerializer",
    "MailAccountListSerializer",
    "MailAccountSerializer",
    "MailAccountUpdateSerializer",
    "MeSerializer",
    "MessageListItemSerializer",
    "MessageListQuery",
    "MessagePageSerializer",
    "MessageSerializer",
    "MessageSummarySerializer",
    "PageQuery",
    "PollRunSerializer",
    "ProblemSerializer",
    "SearchHitSerializer",
    "SearchResultsSerializer",
    "SpaceListSerializer",
    "SpaceSerializer",
    "StrictSerializer",
    "ThreadSerializer",
    "TrashPageSerializer",
    "TrashedMessageSerializer",
    "UtcDateTimeField",
    "absolute",
    "api_url",
    "level_name",
]
