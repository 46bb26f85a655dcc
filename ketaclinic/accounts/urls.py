from django.urls import path

from ketaclinic.accounts import token_views, views

app_name = "accounts"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("tokens/", token_views.token_list, name="tokens"),
    path("tokens/new", token_views.token_create, name="token-create"),
    path("tokens/<uuid:token_id>/revoke", token_views.token_revoke, name="token-revoke"),
]
