"""Attempts, Exams, Users, Assignments, Flags and Invites events (the learning platform's list)."""

from django.contrib.auth import get_user_model

import webhooks
from example_project.organisations.models import Membership, scope_of

from .models import Assignment, Attempt, AttemptOverride, ExamRegistration, Flag, UserGroup

User = get_user_model()


def _time(value):
    return value.isoformat() if value else None


def _decimal(value):
    return None if value is None else str(value)


def organisation_scope(obj, *related):
    return scope_of(obj.organisation_id)


# -- users ------------------------------------------------------------------------------------
#: The account details whose change is a ``user.updated`` (not last_login, not the password).
USER_DETAILS = ("username", "first_name", "last_name", "email", "is_active")


def user_data(user):
    """What integrations may know about a user: never the password hash."""
    membership = Membership.objects.filter(user=user).select_related("organisation").first()
    return {
        "id": user.pk,
        "username": user.username,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "is_active": user.is_active,
        "organisation": (
            {"id": membership.organisation_id, "name": membership.organisation.name}
            if membership
            else None
        ),
        "date_joined": _time(user.date_joined),
    }


def user_scope(user):
    membership = Membership.objects.filter(user=user).only("organisation_id").first()
    return scope_of(membership.organisation_id) if membership else None


def is_platform_user(user):
    return Membership.objects.filter(user=user).exists()


def user_updated_payload(user):
    changed = [f for f in USER_DETAILS if webhooks.previous_value(user, f) != getattr(user, f)]
    return {**user_data(user), "changed_fields": sorted(changed)}


def membership_payload(membership):
    return user_data(membership.user)


def group_member_payload(group, user):
    return {
        "user": {"id": user.pk, "username": user.username, "email": user.email},
        "group": {"id": group.pk, "name": group.name},
        "organisation_id": group.organisation_id,
    }


# -- attempts ---------------------------------------------------------------------------------
def attempt_payload(attempt):
    return {
        "id": attempt.pk,
        "kind": attempt.kind,
        "status": attempt.status,
        "user": {"id": attempt.user_id, "username": attempt.user.username},
        "test": {"id": attempt.test_id, "name": attempt.test.name},
        "score": _decimal(attempt.score),
        "max_score": _decimal(attempt.max_score),
        "organisation_id": attempt.organisation_id,
        "started_at": _time(attempt.started_at),
        "submitted_at": _time(attempt.submitted_at),
        "completed_at": _time(attempt.completed_at),
    }


def is_exam(attempt):
    return attempt.kind == Attempt.Kind.EXAM


def override_payload(override):
    attempt = override.attempt
    return {
        "id": override.pk,
        "attempt": {"id": attempt.pk, "kind": attempt.kind, "user_id": attempt.user_id},
        "overridden_by": override.overridden_by_id,
        "previous_score": _decimal(override.previous_score),
        "new_score": _decimal(override.new_score),
        "is_revert": override.is_revert,
        "reason": override.reason,
        "organisation_id": attempt.organisation_id,
        "created_at": _time(override.created_at),
    }


def override_scope(override):
    return scope_of(override.attempt.organisation_id)


def registration_payload(registration):
    exam = registration.exam
    return {
        "id": registration.pk,
        "user": {"id": registration.user_id, "username": registration.user.username},
        "exam": {"id": exam.pk, "name": exam.name, "state": exam.state},
        "organisation_id": exam.organisation_id,
        "registered_at": _time(registration.registered_at),
    }


def registration_scope(registration):
    return scope_of(registration.exam.organisation_id)


def assignment_payload(assignment):
    return {
        "id": assignment.pk,
        "title": assignment.title,
        "status": assignment.status,
        "assignee": {"id": assignment.assignee_id, "username": assignment.assignee.username},
        "test": {"id": assignment.test_id, "name": assignment.test.name}
        if assignment.test_id
        else None,
        "organisation_id": assignment.organisation_id,
        "due_at": _time(assignment.due_at),
        "completed_at": _time(assignment.completed_at),
    }


def flag_payload(flag):
    return {
        "id": flag.pk,
        "item": {"id": flag.item_id, "name": flag.item.name},
        "user": {"id": flag.user_id, "username": flag.user.username},
        "attempt_id": flag.attempt_id,
        "comment": flag.comment,
        "organisation_id": flag.organisation_id,
        "created_at": _time(flag.created_at),
    }


USER = {
    "id": 12,
    "username": "ada",
    "email": "ada@example.com",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "is_active": True,
    "organisation": {"id": 1, "name": "Northwind Academy"},
    "date_joined": "2026-11-23T09:00:00+00:00",
}
ATTEMPT = {
    "id": 31,
    "kind": "exam",
    "status": "submitted",
    "user": {"id": 12, "username": "ada"},
    "test": {"id": 4, "name": "Maths end of year"},
    "score": None,
    "max_score": "100.00",
    "organisation_id": 1,
    "started_at": "2026-11-23T09:00:00+00:00",
    "submitted_at": "2026-11-23T10:00:00+00:00",
    "completed_at": None,
}
COMPLETED = {**ATTEMPT, "status": "completed", "score": "72.00"}
COMPLETED["completed_at"] = "2026-11-24T08:00:00+00:00"

for name, category, description, example in [
    ("attempt.submitted", "Attempts", "A user submitted a test or exam attempt.", ATTEMPT),
    (
        "attempt.completed",
        "Attempts",
        "An attempt was completed, marking included.",
        COMPLETED,
    ),
    (
        "attemptOverride.created",
        "Attempts",
        "An attempt's result was overridden (or an override was reverted).",
        {
            "id": 3,
            "attempt": {"id": 31, "kind": "exam", "user_id": 12},
            "overridden_by": 2,
            "previous_score": "72.00",
            "new_score": "75.00",
            "is_revert": False,
            "reason": "Question 4 accepted both answers",
            "organisation_id": 1,
            "created_at": "2026-11-24T09:00:00+00:00",
        },
    ),
    ("exam.submitted", "Exams", "A user submitted an exam attempt.", ATTEMPT),
    ("exam.completed", "Exams", "An exam attempt was completed, marking included.", COMPLETED),
    ("user.registered", "Users", "A new user account was created.", USER),
    (
        "user.updated",
        "Users",
        "A user's account details were updated.",
        {**USER, "changed_fields": ["email"]},
    ),
    (
        "user.addedToGroup",
        "Users",
        "A user was added to a user group.",
        {
            "user": {"id": 12, "username": "ada", "email": "ada@example.com"},
            "group": {"id": 2, "name": "Year 9"},
            "organisation_id": 1,
        },
    ),
    (
        "user.registeredForExam",
        "Users",
        "A user was registered for an exam.",
        {
            "id": 5,
            "user": {"id": 12, "username": "ada"},
            "exam": {"id": 11, "name": "Maths end of year – Form A", "state": 1},
            "organisation_id": 1,
            "registered_at": "2026-11-23T09:00:00+00:00",
        },
    ),
    (
        "assignment.completed",
        "Assignments",
        "An assignment was completed.",
        {
            "id": 8,
            "title": "Algebra homework",
            "status": "completed",
            "assignee": {"id": 12, "username": "ada"},
            "test": {"id": 4, "name": "Maths end of year"},
            "organisation_id": 1,
            "due_at": "2026-11-30T17:00:00+00:00",
            "completed_at": "2026-11-24T18:00:00+00:00",
        },
    ),
    (
        "flag.planted",
        "Flags",
        "A flag was planted on a question.",
        {
            "id": 2,
            "item": {"id": 42, "name": "Solve for x"},
            "user": {"id": 12, "username": "ada"},
            "attempt_id": 31,
            "comment": "Two answers look right",
            "organisation_id": 1,
            "created_at": "2026-11-23T09:30:00+00:00",
        },
    ),
    (
        "invite.sent",
        "Invites",
        "An invite email was sent.",
        {
            "id": 4,
            "email": "grace@example.com",
            "organisation_id": 1,
            "invited_by": 2,
            "sent_at": "2026-11-23T09:00:00+00:00",
        },
    ),
]:
    webhooks.event_type(name, category=category, description=description, example=example)

# A platform account is a user with its membership: registered when the membership is made.
webhooks.on_create(
    Membership,
    "user.registered",
    payload=membership_payload,
    scope=lambda membership: scope_of(membership.organisation_id),
)
webhooks.on_update(
    User,
    "user.updated",
    fields=USER_DETAILS,  # a login (last_login) or a new password is not an update
    condition=is_platform_user,
    payload=user_updated_payload,
    scope=user_scope,
)

webhooks.on_m2m(
    UserGroup,
    "members",
    added="user.addedToGroup",
    payload=group_member_payload,
    scope=organisation_scope,
)
webhooks.on_change(
    Attempt,
    "status",
    "attempt.submitted",
    to=Attempt.Status.SUBMITTED,
    payload=attempt_payload,
    scope=organisation_scope,
)
webhooks.on_change(
    Attempt,
    "status",
    "attempt.completed",
    to=Attempt.Status.COMPLETED,
    payload=attempt_payload,
    scope=organisation_scope,
)
webhooks.on_change(
    Attempt,
    "status",
    "exam.submitted",
    to=Attempt.Status.SUBMITTED,
    condition=is_exam,
    payload=attempt_payload,
    scope=organisation_scope,
)
webhooks.on_change(
    Attempt,
    "status",
    "exam.completed",
    to=Attempt.Status.COMPLETED,
    condition=is_exam,
    payload=attempt_payload,
    scope=organisation_scope,
)
webhooks.on_create(
    AttemptOverride, "attemptOverride.created", payload=override_payload, scope=override_scope
)
webhooks.on_create(
    ExamRegistration,
    "user.registeredForExam",
    payload=registration_payload,
    scope=registration_scope,
)
webhooks.on_change(
    Assignment,
    "status",
    "assignment.completed",
    to=Assignment.Status.COMPLETED,
    payload=assignment_payload,
    scope=organisation_scope,
)
webhooks.on_create(Flag, "flag.planted", payload=flag_payload, scope=organisation_scope)
