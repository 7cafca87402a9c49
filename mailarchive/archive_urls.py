"""URLs of the reading pages. Published URLs are permalinks: keep them stable."""

from django.urls import path

from . import feeds
from .views import mail, preferences, search, trash

app_name = "mailarchive"

MAIL = "spaces/<str:key>/mail/"
MESSAGE = MAIL + "<int:message_pk>/"

urlpatterns = [
    path(MAIL, mail.mail_list, name="mail-list"),
    path(MAIL + "months/", mail.mail_months, name="mail-months"),
    path(MAIL + "search/", search.search_space, name="space-search"),
    path(MAIL + "feed/", feeds.feed_for_session, name="feed"),
    path(MAIL + "feed/<str:token>/", feeds.feed_for_token, name="feed-token-url"),
    path(MAIL + "trash/", trash.trash, name="trash"),
    path(MAIL + "trash/action/", trash.trash_action, name="trash-action"),
    path(MAIL + "delete-all/", trash.delete_all, name="delete-all"),
    path(MAIL + "undo-delete/", mail.message_undo_delete, name="undo-delete"),
    path(MAIL + "threads/<int:thread_id>/", mail.thread_detail, name="thread-detail"),
    path(MESSAGE, mail.message_detail, name="message-detail"),
    path(MESSAGE + "raw/", mail.message_raw, name="message-raw"),
    path(
        MESSAGE + "raw/download/",
        mail.message_raw_download,
        name="message-raw-download",
    ),
    path(
        MESSAGE + "attachments/<int:position>/",
        mail.attachment_download,
        name="attachment-download",
    ),
    path(
        MESSAGE + "inline/<int:position>/",
        mail.attachment_inline,
        name="attachment-inline",
    ),
    path(MESSAGE + "delete/", mail.message_delete, name="message-delete"),
    path(MESSAGE + "restore/", mail.message_restore, name="message-restore"),
    path("mail/<path:message_id>/", mail.message_permalink, name="permalink"),
    path("search/", search.search_all, name="search"),
    path("feeds/", preferences.feed_token, name="feed-token"),
    path("preferences/time-zone/", preferences.time_zone, name="time-zone"),
    path("preferences/mail-view/", preferences.mail_view, name="mail-view"),
]
