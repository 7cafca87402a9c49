"""URLs of the API, under ``/api/v1/``. Published URLs stay stable."""

from django.urls import path, re_path

from .views import accounts, docs, imports, mail, permissions, search, spaces

app_name = "api"

SPACE = "spaces/<str:key>/"
MESSAGE = SPACE + "messages/<int:id>/"

urlpatterns = [
    path("", docs.ApiRootView.as_view(), name="root"),
    path("schema/", docs.SchemaView.as_view(), name="schema"),
    path("docs/", docs.SwaggerView.as_view(), name="docs"),
    path("redoc/", docs.RedocView.as_view(), name="redoc"),
    path("me/", spaces.MeView.as_view(), name="me"),
    path("search/", search.SearchAllView.as_view(), name="search"),
    path("spaces/", spaces.SpaceListView.as_view(), name="space-list"),
    path(SPACE, spaces.SpaceDetailView.as_view(), name="space-detail"),
    path(SPACE + "messages/", mail.MessageListView.as_view(), name="message-list"),
    path(MESSAGE, mail.MessageDetailView.as_view(), name="message-detail"),
    path(MESSAGE + "raw/", mail.MessageRawView.as_view(), name="message-raw"),
    path(
        MESSAGE + "attachments/<int:position>/",
        mail.AttachmentDownloadView.as_view(),
        name="attachment-download",
    ),
    path(MESSAGE + "trash/", mail.MessageTrashView.as_view(), name="message-trash"),
    path(
        MESSAGE + "restore/", mail.MessageRestoreView.as_view(), name="message-restore"
    ),
    path(SPACE + "trash/", mail.TrashListView.as_view(), name="trash-list"),
    path(
        SPACE + "threads/<int:id>/",
        mail.ThreadDetailView.as_view(),
        name="thread-detail",
    ),
    path(
        SPACE + "threads/<int:id>/export/",
        mail.ThreadExportView.as_view(),
        name="thread-export",
    ),
    path(SPACE + "export/", mail.SpaceExportView.as_view(), name="space-export"),
    path(SPACE + "search/", search.SpaceSearchView.as_view(), name="space-search"),
    path(
        SPACE + "search/export/",
        search.SearchExportView.as_view(),
        name="search-export",
    ),
    path(
        SPACE + "mail-accounts/",
        accounts.MailAccountListView.as_view(),
        name="mail-account-list",
    ),
    path(
        SPACE + "mail-accounts/<int:id>/",
        accounts.MailAccountDetailView.as_view(),
        name="mail-account-detail",
    ),
    path(
        SPACE + "mail-accounts/<int:id>/enabled/",
        accounts.MailAccountEnabledView.as_view(),
        name="mail-account-enabled",
    ),
    path(
        SPACE + "mail-accounts/<int:id>/test/",
        accounts.MailAccountTestView.as_view(),
        name="mail-account-test",
    ),
    path(
        SPACE + "mail-accounts/<int:id>/fetch/",
        accounts.MailAccountFetchView.as_view(),
        name="mail-account-fetch",
    ),
    path(
        SPACE + "poll-runs/<int:id>/",
        accounts.PollRunDetailView.as_view(),
        name="poll-run-detail",
    ),
    path(SPACE + "imports/", imports.ImportListView.as_view(), name="import-list"),
    path(
        SPACE + "imports/<int:id>/",
        imports.ImportDetailView.as_view(),
        name="import-detail",
    ),
    path(
        SPACE + "imports/<int:id>/rerun/",
        imports.ImportRerunView.as_view(),
        name="import-rerun",
    ),
    path(
        SPACE + "permissions/",
        permissions.GrantListView.as_view(),
        name="permission-list",
    ),
    path(
        SPACE + "permissions/<int:id>/",
        permissions.GrantDetailView.as_view(),
        name="permission-detail",
    ),
    re_path(r"^.*$", docs.NotFoundView.as_view(), name="not-found"),
]
