from django.urls import path

from ketaclinic.accounts import passkey_views, token_views, views

app_name = "accounts"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("login/passkey/options", passkey_views.login_options, name="passkey-login-options"),
    path("login/passkey/verify", passkey_views.login_verify, name="passkey-login-verify"),
    path("passkeys/", passkey_views.passkey_list, name="passkeys"),
    path("passkeys/options", passkey_views.passkey_register_options, name="passkey-options"),
    path("passkeys/register", passkey_views.passkey_register, name="passkey-register"),
    path("passkeys/<uuid:device_id>/remove", passkey_views.passkey_remove, name="passkey-remove"),
    path("tokens/", token_views.token_list, name="tokens"),
    path("tokens/new", token_views.token_create, name="token-create"),
    path("tokens/<uuid:token_id>/revoke", token_views.token_revoke, name="token-revoke"),
]
