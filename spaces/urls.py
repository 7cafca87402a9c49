from django.urls import path

from . import views

app_name = "spaces"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("spaces/new/", views.space_create_view, name="space-create"),
    path("spaces/<str:key>/", views.space_home, name="space-home"),
    path("spaces/<str:key>/edit/", views.space_update_view, name="space-update"),
    path("spaces/<str:key>/delete/", views.space_delete_view, name="space-delete"),
    path(
        "spaces/<str:key>/permissions/",
        views.space_permissions,
        name="space-permissions",
    ),
    path(
        "spaces/<str:key>/permissions/<int:grant_id>/revoke/",
        views.space_permission_revoke_view,
        name="space-permission-revoke",
    ),
]
