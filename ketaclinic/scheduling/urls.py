from django.urls import path

from ketaclinic.scheduling import settings_views, views

app_name = "scheduling"

urlpatterns = [
    path("", views.calendar_day, name="day"),
    path("week/", views.calendar_week, name="week"),
    path("book/", views.book, name="book"),
    path("appointments/<uuid:appointment_id>/", views.appointment_detail, name="appointment"),
    path(
        "appointments/<uuid:appointment_id>/check-in/",
        views.appointment_action,
        {"action": "check-in"},
        name="check-in",
    ),
    path(
        "appointments/<uuid:appointment_id>/move/",
        views.appointment_action,
        {"action": "move"},
        name="move",
    ),
    path(
        "appointments/<uuid:appointment_id>/cancel/",
        views.appointment_action,
        {"action": "cancel"},
        name="cancel",
    ),
    path(
        "appointments/<uuid:appointment_id>/no-show/",
        views.appointment_action,
        {"action": "no-show"},
        name="no-show",
    ),
    path("settings/", settings_views.settings_page, name="settings"),
    path("settings/capacity/", settings_views.capacity_publish, name="capacity"),
    path("settings/portal/", settings_views.portal_policy_publish, name="portal-policy"),
    path("settings/types/<str:kind>/", settings_views.type_edit, name="type-edit"),
    path("settings/hours/", settings_views.hours_list, name="hours"),
    path("settings/hours/<uuid:user_id>/", settings_views.hours_edit, name="hours-edit"),
    path("waitlist/", settings_views.waitlist, name="waitlist"),
    path("waitlist/<uuid:entry_id>/book/", settings_views.waitlist_book, name="waitlist-book"),
    path(
        "waitlist/<uuid:entry_id>/remove/",
        settings_views.waitlist_remove,
        name="waitlist-remove",
    ),
    path("feed/", views.calendar_feed_manage, name="feed-manage"),
    path("feed/<str:token>.ics", views.calendar_feed, name="feed"),
    path("leads/", views.lead_list, name="leads"),
    path("leads/<uuid:lead_id>/convert/", views.lead_convert, name="lead-convert"),
    path("plans/<uuid:plan_id>/series/", views.series_new, name="series-new"),
    path("series/<uuid:series_id>/", views.series_detail, name="series"),
]
