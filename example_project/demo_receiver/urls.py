from django.urls import path

from . import views

app_name = "demo_receiver"
urlpatterns = [
    path("", views.index, name="index"),
    path("<slug:name>/", views.inbox, name="inbox"),
]
