from django.contrib import admin

from .models import (
    Assignment,
    Attempt,
    AttemptOverride,
    ExamRegistration,
    Flag,
    Invite,
    UserGroup,
)


@admin.register(UserGroup)
class UserGroupAdmin(admin.ModelAdmin):
    list_display = ["name", "organisation"]
    filter_horizontal = ["members"]


@admin.register(Attempt)
class AttemptAdmin(admin.ModelAdmin):
    list_display = ["user", "test", "kind", "status", "score"]
    list_filter = ["kind", "status"]


@admin.register(AttemptOverride)
class AttemptOverrideAdmin(admin.ModelAdmin):
    list_display = ["attempt", "previous_score", "new_score", "is_revert", "created_at"]


@admin.register(ExamRegistration)
class ExamRegistrationAdmin(admin.ModelAdmin):
    list_display = ["user", "exam", "registered_at"]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["title", "assignee", "status", "due_at"]
    list_filter = ["status"]


@admin.register(Flag)
class FlagAdmin(admin.ModelAdmin):
    list_display = ["item", "user", "comment", "created_at"]


@admin.register(Invite)
class InviteAdmin(admin.ModelAdmin):
    list_display = ["email", "organisation", "sent_at"]
    exclude = ["token"]
