from django.urls import path

from ketaclinic.portal import (
    appointment_views,
    auth_views,
    intake_views,
    sign_in_views,
    views,
)

app_name = "portal"

urlpatterns = [
    path("m/<str:token>/", views.measure, name="measure"),
    path("", auth_views.portal_home, name="home"),
    path("login/", auth_views.portal_login, name="login"),
    path("logout/", auth_views.portal_logout, name="logout"),
    path("login/link/", sign_in_views.sign_in_link_request, name="sign-in-link-request"),
    path("sign-in/<str:token>/", sign_in_views.sign_in, name="sign-in"),
    path("invite/<str:token>/", auth_views.invite_accept, name="invite"),
    path("intake/", intake_views.portal_intake, name="intake"),
    path("appointments/", appointment_views.appointments, name="appointments"),
    path("appointments/book/", appointment_views.appointment_book, name="appointment-book"),
    path(
        "appointments/<uuid:appointment_id>/move/",
        appointment_views.appointment_move,
        name="appointment-move",
    ),
    path(
        "appointments/<uuid:appointment_id>/cancel/",
        appointment_views.appointment_cancel,
        name="appointment-cancel",
    ),
    path("consents/<uuid:version_id>/sign/", auth_views.portal_consent_sign, name="consent-sign"),
    path(
        "consents/signed/<uuid:signature_id>/pdf/",
        auth_views.portal_consent_pdf,
        name="consent-pdf",
    ),
    path(
        "consents/signed/<uuid:signature_id>/revoke/",
        auth_views.portal_consent_revoke,
        name="consent-revoke",
    ),
]
