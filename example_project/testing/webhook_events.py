"""Test Creation and Test Administration events: declared and bound through the public API."""

import webhooks
from example_project.organisations.models import scope_of

from .models import Exam, ExamState, Test, TestForm


def _time(value):
    return value.isoformat() if value else None


def test_payload(test):
    return {
        "id": test.pk,
        "name": test.name,
        "status": test.status,
        "organisation_id": test.organisation_id,
        "updated_at": _time(test.updated_at),
    }


def test_form_payload(form):
    return {
        "id": form.pk,
        "name": form.name,
        "delivery": form.delivery,
        "test": {"id": form.test_id, "name": form.test.name},
        "organisation_id": form.test.organisation_id,
        "updated_at": _time(form.updated_at),
    }


def exam_payload(exam):
    return {
        "id": exam.pk,
        "name": exam.name,
        "state": exam.state,
        "state_name": ExamState(exam.state).name,
        "previous_state": webhooks.previous_value(exam, "state"),
        "test_form": {"id": exam.test_form_id, "name": exam.test_form.name},
        "candidate": (
            {"id": exam.candidate_id, "username": exam.candidate.username}
            if exam.candidate_id
            else None
        ),
        "score": None if exam.score is None else str(exam.score),
        "organisation_id": exam.organisation_id,
        "state_changed_at": _time(exam.state_changed_at),
    }


def organisation_scope(obj):
    return scope_of(obj.organisation_id)


def test_form_scope(form):
    return scope_of(form.test.organisation_id)


TEST = {
    "id": 4,
    "name": "Maths end of year",
    "status": "live",
    "organisation_id": 1,
    "updated_at": "2026-11-23T09:00:00+00:00",
}
TEST_FORM = {
    "id": 6,
    "name": "Form A",
    "delivery": "online",
    "test": {"id": 4, "name": "Maths end of year"},
    "organisation_id": 1,
    "updated_at": "2026-11-23T09:00:00+00:00",
}


def exam_example(state: ExamState, previous: ExamState):
    return {
        "id": 11,
        "name": "Maths end of year – Form A – ada",
        "state": int(state),
        "state_name": state.name,
        "previous_state": int(previous),
        "test_form": {"id": 6, "name": "Form A"},
        "candidate": {"id": 12, "username": "ada"},
        "score": None,
        "organisation_id": 1,
        "state_changed_at": "2026-11-23T09:00:00+00:00",
    }


for name, description, example in [
    ("test.created", "A test was created.", TEST),
    ("test.updated", "A test was changed (retiring it is a change).", TEST),
    ("test.deleted", "A test was deleted permanently (from retired to deleted).", TEST),
    ("testForm.created", "A test form was created.", TEST_FORM),
    ("testForm.updated", "A test form was changed.", TEST_FORM),
    ("testForm.deleted", "A test form was deleted.", TEST_FORM),
]:
    webhooks.event_type(name, category="Test Creation", description=description, example=example)

webhooks.on_crud(
    Test,
    created="test.created",
    updated="test.updated",
    deleted="test.deleted",
    payload=test_payload,
    scope=organisation_scope,
)
webhooks.on_crud(
    TestForm,
    created="testForm.created",
    updated="testForm.updated",
    deleted="testForm.deleted",
    payload=test_form_payload,
    scope=test_form_scope,
)

S = ExamState
#: (event, the state raising it each time the exam enters it, description, prior state)
EXAM_TRANSITIONS = [
    (
        "exam.scheduled",
        S.SCHEDULED,
        "The test form was generated; its content and settings are locked.",
        S.DRAFT,
    ),
    (
        "exam.ready",
        S.READY,
        "The test window is open and the test can be sat. Sent again each time a window reopens.",
        S.SCHEDULED,
    ),
    (
        "exam.started",
        S.IN_PROGRESS,
        "The test is in progress, including every return to in progress (e.g. unpaused).",
        S.READY,
    ),
    (
        "exam.changed",
        S.WAREHOUSED,
        "The script was warehoused and marking data is available (also after a remark).",
        S.FINISHED,
    ),
    (
        "exam.paperAwaitingMarking",
        S.PAPER_AWAITING_MARKING,
        "A paper-based script is awaiting marking.",
        S.PAPER_RESPONSE_UPLOAD,
    ),
    (
        "exam.awaitingPaperResponseUpload",
        S.PAPER_RESPONSE_UPLOAD,
        "The test form awaits responses uploaded by hand (taken on paper; exam state 19).",
        S.WINDOW_CLOSED,
    ),
    (
        "result.rescored",
        S.RESCORED,
        "The script was rescored and the latest marking data is available.",
        S.WAREHOUSED,
    ),
    (
        "exam.secureMarkerWarehoused",
        S.SECURE_MARKER_WAREHOUSED,
        "The script was warehoused and marked (or re-marked) in the marking product.",
        S.WAREHOUSED,
    ),
]

for name, state, description, previous in EXAM_TRANSITIONS:
    webhooks.event_type(
        name,
        category="Test Administration",
        description=description,
        example=exam_example(state, previous),
    )
    webhooks.on_change(
        Exam, "state", name, to=state, payload=exam_payload, scope=organisation_scope
    )
