"""URLs of mail import and mbox export, under ``/spaces/<KEY>/``."""

from django.urls import path

from . import exports, import_views

app_name = "mbox"

urlpatterns = [
    path("spaces/<str:key>/imports/", import_views.import_list, name="import-list"),
    path(
        "spaces/<str:key>/imports/upload/",
        import_views.import_upload,
        name="import-upload",
    ),
    path(
        "spaces/<str:key>/imports/server/",
        import_views.import_server_file,
        name="import-server",
    ),
    path(
        "spaces/<str:key>/imports/<int:import_id>/",
        import_views.import_detail,
        name="import-detail",
    ),
    path(
        "spaces/<str:key>/imports/<int:import_id>/status.json",
        import_views.import_status,
        name="import-status",
    ),
    path(
        "spaces/<str:key>/imports/<int:import_id>/rerun/",
        import_views.import_rerun,
        name="import-rerun",
    ),
    path(
        "spaces/<str:key>/export.mbox", exports.export_space_view, name="export-space"
    ),
    path(
        "spaces/<str:key>/threads/<int:thread_id>/export.mbox",
        exports.export_thread_view,
        name="export-thread",
    ),
    path(
        "spaces/<str:key>/search/export.mbox",
        exports.export_search_view,
        name="export-search",
    ),
]
