from django.contrib import admin

from .models import Exam, Test, TestForm


@admin.register(Test)
class TestAdmin(admin.ModelAdmin):
    list_display = ["name", "status", "organisation"]
    list_filter = ["status", "organisation"]


@admin.register(TestForm)
class TestFormAdmin(admin.ModelAdmin):
    list_display = ["name", "test", "delivery"]
    filter_horizontal = ["items"]


@admin.register(Exam)
class ExamAdmin(admin.ModelAdmin):
    list_display = ["name", "state", "candidate", "organisation", "state_changed_at"]
    list_filter = ["state", "organisation"]
