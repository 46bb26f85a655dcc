from django.urls import path

from ketaclinic.sessions import views

app_name = "floor"

urlpatterns = [path("", views.floor_board, name="board")]
