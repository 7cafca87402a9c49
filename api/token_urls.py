"""URLs of the API token page."""

from django.urls import path

from . import token_views

app_name = "api-tokens"

urlpatterns = [
    path("preferences/api-tokens/", token_views.token_list, name="token-list"),
    path(
        "preferences/api-tokens/<int:token_id>/revoke/",
        token_views.token_revoke,
        name="token-revoke",
    ),
]
