from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("spaces/<str:key>/accounts/", views.account_list, name="account-list"),
    path("spaces/<str:key>/accounts/new/", views.account_create, name="account-create"),
    path(
        "spaces/<str:key>/accounts/<int:account_id>/edit/",
        views.account_edit,
        name="account-edit",
    ),
    path(
        "spaces/<str:key>/accounts/<int:account_id>/remove/",
        views.account_delete,
        name="account-delete",
    ),
    path(
        "spaces/<str:key>/accounts/<int:account_id>/enabled/",
        views.account_enable,
        name="account-enable",
    ),
    path(
        "spaces/<str:key>/accounts/<int:account_id>/test/",
        views.account_test,
        name="account-test",
    ),
    path(
        "spaces/<str:key>/accounts/<int:account_id>/fetch/",
        views.account_fetch,
        name="account-fetch",
    ),
    path(
        "spaces/<str:key>/accounts/polls/<int:poll_run_id>/",
        views.poll_run_detail,
        name="poll-run",
    ),
    path(
        "spaces/<str:key>/accounts/polls/<int:poll_run_id>/status/",
        views.poll_run_status,
        name="poll-run-status",
    ),
    path(
        "spaces/<str:key>/accounts/<int:account_id>/sign-in/",
        views.account_signin,
        name="account-signin",
    ),
    path("accounts/oauth2/callback/", views.oauth2_callback, name="oauth2-callback"),
    path("site/sign-in-providers/", views.providers_view, name="providers"),
    path("site/fetching/", views.fetch_settings_view, name="fetch-settings"),
    path("site/mail-accounts/", views.report, name="report"),
    path("preferences/alerts/", views.alert_preferences, name="alert-preferences"),
]
