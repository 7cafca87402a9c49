from django.urls import path

from . import views

app_name = "users"

urlpatterns = [
    path("site/users/", views.user_list, name="user-list"),
    path("site/users/new/", views.user_create_view, name="user-create"),
    path(
        "site/users/<int:user_id>/password/",
        views.user_password_reset,
        name="user-password",
    ),
    path("site/users/<int:user_id>/active/", views.user_active, name="user-active"),
    path("preferences/password/", views.password_change, name="password-change"),
]
