"""Every event of both catalogues, raised by the example platform's own models.

For each event type: arrange the platform, do the host action through the models in a
committed transaction (the queue runs inline), then check that a real receiver subscribed
to that type got exactly that event with the expected data, and that a receiver
subscribed to every *other* type got nothing (so the action raises nothing unexpected).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import pytest

from example_project.authoring.models import AuthoringTask, Item, ItemList, ItemSet, TagValue
from example_project.learning.models import (
    Assignment,
    Attempt,
    AttemptOverride,
    ExamRegistration,
    Flag,
    Invite,
    UserGroup,
    register_user,
)
from example_project.store.models import Purchase
from example_project.testing.models import Exam, ExamState, Test, TestForm
from webhooks.models import EventType
from webhooks.registry import registry

CATALOGUE = {
    # Product 1: the assessment platform's Event Notifications Service (18 rows)
    "item.created", "item.updated", "item.deleted",
    "itemList.created", "itemList.updated", "itemList.deleted",
    "itemListItem.added", "itemListItem.removed",
    "itemSet.created", "itemSet.updated", "itemSet.deleted",
    "items.moved",
    "task.itemSubmitted",
    "task.finalised",
    "test.created", "test.updated", "test.deleted",
    "testForm.created", "testForm.updated", "testForm.deleted",
    "exam.scheduled",
    "exam.ready",
    "exam.started",
    "exam.changed",
    "exam.paperAwaitingMarking",
    "exam.awaitingPaperResponseUpload",
    "result.rescored",
    "exam.secureMarkerWarehoused",
    "tagValue.created",
    # Product 2: the learning platform's Webhooks (13 rows)
    "attempt.submitted",
    "attempt.completed",
    "attemptOverride.created",
    "exam.submitted",
    "exam.completed",
    "user.registered",
    "user.updated",
    "user.addedToGroup",
    "user.registeredForExam",
    "assignment.completed",
    "flag.planted",
    "store.purchase",
    "invite.sent",
}  # fmt: skip


@dataclass
class Case:
    event: str
    act: Callable
    expect: Callable  # w -> dict that must be contained in the event's data
    arrange: Callable | None = None  # w -> None, before the committed action
    also: tuple = ()  # other types this action raises, by design

    def __str__(self):
        return self.event


def exam(w, *path: ExamState, form=None):
    """An exam of ``w.ada`` walked through ``path`` (before the action under test)."""
    sitting = Exam.objects.create(
        organisation=w.org, test_form=form or w.form, candidate=w.ada, name="Maths – ada"
    )
    for state in path:
        sitting.move_to(state)
    w.exam = sitting
    return sitting


S = ExamState
TO_WAREHOUSED = (S.SCHEDULED, S.READY, S.IN_PROGRESS, S.FINISHED, S.WAREHOUSED)


def attempt(w, kind, *, submitted=False):
    w.attempt = Attempt.objects.create(organisation=w.org, user=w.ada, test=w.test, kind=kind)
    if submitted:
        w.attempt.submit()


def exam_expect(state, previous):
    return lambda w: {
        "id": w.exam.pk,
        "state": int(state),
        "state_name": state.name,
        "previous_state": int(previous),
        "test_form": {"id": w.exam.test_form_id, "name": w.exam.test_form.name},
        "candidate": {"id": w.ada.pk, "username": "ada"},
        "organisation_id": w.org.pk,
    }


def setattrs(obj, **values):
    for name, value in values.items():
        setattr(obj, name, value)
    obj.save()


def make(w, name, value):
    setattr(w, name, value)


CASES = [
    # -- Item Authoring ----------------------------------------------------------------------
    Case(
        "item.created",
        act=lambda w: make(
            w, "item", Item.objects.create(organisation=w.org, subject=w.algebra, name="New")
        ),
        expect=lambda w: {
            "id": w.item.pk,
            "name": "New",
            "subject": {"id": w.algebra.pk, "name": "Algebra"},
            "organisation_id": w.org.pk,
            "in_recycle_bin": False,
        },
    ),
    Case(
        "item.updated",
        act=lambda w: setattrs(w.q1, name="Solve 2x + 5 = 9"),
        expect=lambda w: {"id": w.q1.pk, "name": "Solve 2x + 5 = 9", "in_recycle_bin": False},
    ),
    Case(
        "item.deleted",
        arrange=lambda w: (make(w, "pk", w.q2.pk), w.q2.move_to_recycle_bin()),
        act=lambda w: w.q2.delete(),
        expect=lambda w: {"id": w.pk, "name": "Area of a triangle", "in_recycle_bin": True},
    ),
    Case(
        "itemList.created",
        act=lambda w: make(
            w,
            "list",
            ItemList.objects.create(organisation=w.org, name="Week 2", is_published=True),
        ),
        expect=lambda w: {"id": w.list.pk, "name": "Week 2", "is_published": True},
    ),
    Case(
        "itemList.updated",
        act=lambda w: setattrs(w.published, name="Week 1 (revised)"),
        expect=lambda w: {"id": w.published.pk, "name": "Week 1 (revised)"},
    ),
    Case(
        "itemList.deleted",
        arrange=lambda w: make(w, "pk", w.published.pk),
        act=lambda w: w.published.delete(),
        expect=lambda w: {"id": w.pk, "name": "Week 1", "organisation_id": w.org.pk},
    ),
    Case(
        "itemListItem.added",
        act=lambda w: w.published.items.add(w.q2),
        expect=lambda w: {
            "item_list": {"id": w.published.pk, "name": "Week 1"},
            "item": {"id": w.q2.pk, "name": "Area of a triangle"},
            "organisation_id": w.org.pk,
        },
    ),
    Case(
        "itemListItem.removed",
        act=lambda w: w.published.items.remove(w.q1),
        expect=lambda w: {
            "item_list": {"id": w.published.pk, "name": "Week 1"},
            "item": {"id": w.q1.pk, "name": "Solve 2x + 3 = 7"},
        },
    ),
    Case(
        "itemSet.created",
        act=lambda w: make(w, "set", ItemSet.objects.create(organisation=w.org, name="Passage")),
        expect=lambda w: {"id": w.set.pk, "name": "Passage", "organisation_id": w.org.pk},
    ),
    Case(
        "itemSet.updated",
        arrange=lambda w: make(w, "set", ItemSet.objects.create(organisation=w.org, name="P")),
        act=lambda w: setattrs(w.set, name="Passage B"),
        expect=lambda w: {"id": w.set.pk, "name": "Passage B", "in_recycle_bin": False},
    ),
    Case(
        "itemSet.deleted",
        arrange=lambda w: (
            make(w, "set", ItemSet.objects.create(organisation=w.org, name="Old passage")),
            make(w, "pk", w.set.pk),
            w.set.move_to_recycle_bin(),
        ),
        act=lambda w: w.set.delete(),
        expect=lambda w: {"id": w.pk, "name": "Old passage", "in_recycle_bin": True},
    ),
    Case(
        "items.moved",
        act=lambda w: setattrs(w.q1, subject=w.geometry),
        expect=lambda w: {
            "id": w.q1.pk,
            "old_subject": {"id": w.algebra.pk, "name": "Algebra"},
            "new_subject": {"id": w.geometry.pk, "name": "Geometry"},
            "organisation_id": w.org.pk,
        },
        also=("item.updated",),
    ),
    # -- Tasks -------------------------------------------------------------------------------
    Case(
        "task.itemSubmitted",
        arrange=lambda w: make(
            w,
            "task",
            AuthoringTask.objects.create(organisation=w.org, name="Write", assignee=w.teacher),
        ),
        act=lambda w: w.task.submit_item(w.q2),
        expect=lambda w: {
            "id": w.task.pk,
            "status": "item_submitted",
            "assignee": {"id": w.teacher.pk, "username": "teacher"},
            "item": {"id": w.q2.pk, "name": "Area of a triangle"},
        },
    ),
    Case(
        "task.finalised",
        arrange=lambda w: make(
            w,
            "task",
            AuthoringTask.objects.create(
                organisation=w.org, name="Review", kind=AuthoringTask.Kind.REVIEW
            ),
        ),
        act=lambda w: w.task.finalise(),
        expect=lambda w: {"id": w.task.pk, "kind": "review", "status": "finalised"},
    ),
    # -- Test Creation -----------------------------------------------------------------------
    Case(
        "test.created",
        act=lambda w: make(w, "new", Test.objects.create(organisation=w.org, name="Mock")),
        expect=lambda w: {"id": w.new.pk, "name": "Mock", "status": "draft"},
    ),
    Case(
        "test.updated",
        act=lambda w: w.test.retire(),
        expect=lambda w: {"id": w.test.pk, "status": "retired"},
    ),
    Case(
        "test.deleted",
        arrange=lambda w: (
            make(w, "old", Test.objects.create(organisation=w.org, name="Old mock")),
            make(w, "pk", w.old.pk),
            w.old.retire(),
        ),
        act=lambda w: w.old.delete(),
        expect=lambda w: {"id": w.pk, "name": "Old mock", "status": "retired"},
    ),
    Case(
        "testForm.created",
        act=lambda w: make(w, "new", TestForm.objects.create(test=w.test, name="Form B")),
        expect=lambda w: {
            "id": w.new.pk,
            "name": "Form B",
            "delivery": "online",
            "test": {"id": w.test.pk, "name": "Maths end of year"},
            "organisation_id": w.org.pk,
        },
    ),
    Case(
        "testForm.updated",
        act=lambda w: setattrs(w.form, name="Form A (final)"),
        expect=lambda w: {"id": w.form.pk, "name": "Form A (final)"},
    ),
    Case(
        "testForm.deleted",
        arrange=lambda w: make(w, "pk", w.paper.pk),
        act=lambda w: w.paper.delete(),
        expect=lambda w: {"id": w.pk, "name": "Form P", "delivery": "paper"},
    ),
    # -- Test Administration -----------------------------------------------------------------
    Case(
        "exam.scheduled",
        arrange=lambda w: exam(w),
        act=lambda w: w.exam.schedule(),
        expect=exam_expect(S.SCHEDULED, S.DRAFT),
    ),
    Case(
        "exam.ready",
        arrange=lambda w: exam(w, S.SCHEDULED),
        act=lambda w: w.exam.open_window(),
        expect=exam_expect(S.READY, S.SCHEDULED),
    ),
    Case(
        "exam.started",
        arrange=lambda w: exam(w, S.SCHEDULED, S.READY),
        act=lambda w: w.exam.start(),
        expect=exam_expect(S.IN_PROGRESS, S.READY),
    ),
    Case(
        "exam.changed",
        arrange=lambda w: exam(w, S.SCHEDULED, S.READY, S.IN_PROGRESS, S.FINISHED),
        act=lambda w: w.exam.warehouse(score=Decimal("72")),
        expect=lambda w: {**exam_expect(S.WAREHOUSED, S.FINISHED)(w), "score": "72"},
    ),
    Case(
        "exam.paperAwaitingMarking",
        arrange=lambda w: exam(w, S.SCHEDULED, S.READY, S.PAPER_RESPONSE_UPLOAD, form=w.paper),
        act=lambda w: w.exam.await_paper_marking(),
        expect=exam_expect(S.PAPER_AWAITING_MARKING, S.PAPER_RESPONSE_UPLOAD),
    ),
    Case(
        "exam.awaitingPaperResponseUpload",
        arrange=lambda w: exam(w, S.SCHEDULED, S.READY, S.WINDOW_CLOSED, form=w.paper),
        act=lambda w: w.exam.await_paper_response_upload(),
        expect=lambda w: {**exam_expect(S.PAPER_RESPONSE_UPLOAD, S.WINDOW_CLOSED)(w), "state": 19},
    ),
    Case(
        "result.rescored",
        arrange=lambda w: exam(w, *TO_WAREHOUSED),
        act=lambda w: w.exam.rescore(Decimal("74.50")),
        expect=lambda w: {**exam_expect(S.RESCORED, S.WAREHOUSED)(w), "score": "74.50"},
    ),
    Case(
        "exam.secureMarkerWarehoused",
        arrange=lambda w: exam(w, *TO_WAREHOUSED),
        act=lambda w: w.exam.warehouse_in_secure_marker(),
        expect=exam_expect(S.SECURE_MARKER_WAREHOUSED, S.WAREHOUSED),
    ),
    # -- Setup -------------------------------------------------------------------------------
    Case(
        "tagValue.created",
        act=lambda w: make(
            w, "tag", TagValue.objects.create(group=w.tag_group, value="Y9", created_by=w.ada)
        ),
        expect=lambda w: {
            "id": w.tag.pk,
            "value": "Y9",
            "tag_group": {"id": w.tag_group.pk, "name": "Year group"},
            "organisation_id": w.org.pk,
            "created_by": w.ada.pk,
        },
    ),
    # -- Attempts, Exams (learning platform) -------------------------------------------------
    Case(
        "attempt.submitted",
        arrange=lambda w: attempt(w, Attempt.Kind.PRACTICE),
        act=lambda w: w.attempt.submit(),
        expect=lambda w: {
            "id": w.attempt.pk,
            "kind": "practice",
            "status": "submitted",
            "user": {"id": w.ada.pk, "username": "ada"},
            "test": {"id": w.test.pk, "name": "Maths end of year"},
        },
    ),
    Case(
        "attempt.completed",
        arrange=lambda w: attempt(w, Attempt.Kind.TEST, submitted=True),
        act=lambda w: w.attempt.complete(Decimal("64")),
        expect=lambda w: {"id": w.attempt.pk, "kind": "test", "status": "completed", "score": "64"},
    ),
    Case(
        "attemptOverride.created",
        arrange=lambda w: attempt(w, Attempt.Kind.EXAM, submitted=True),
        act=lambda w: make(
            w,
            "override",
            AttemptOverride.objects.create(
                attempt=w.attempt,
                overridden_by=w.teacher,
                previous_score=Decimal("75"),
                new_score=Decimal("72"),
                is_revert=True,
            ),
        ),
        expect=lambda w: {
            "id": w.override.pk,
            "attempt": {"id": w.attempt.pk, "kind": "exam", "user_id": w.ada.pk},
            "previous_score": "75",
            "new_score": "72",
            "is_revert": True,
            "organisation_id": w.org.pk,
        },
    ),
    Case(
        "exam.submitted",
        arrange=lambda w: attempt(w, Attempt.Kind.EXAM),
        act=lambda w: w.attempt.submit(),
        expect=lambda w: {"id": w.attempt.pk, "kind": "exam", "status": "submitted"},
        also=("attempt.submitted",),
    ),
    Case(
        "exam.completed",
        arrange=lambda w: attempt(w, Attempt.Kind.EXAM, submitted=True),
        act=lambda w: w.attempt.complete(Decimal("81")),
        expect=lambda w: {"id": w.attempt.pk, "kind": "exam", "status": "completed"},
        also=("attempt.completed",),
    ),
    # -- Users -------------------------------------------------------------------------------
    Case(
        "user.registered",
        act=lambda w: make(
            w, "new", register_user(w.org, "grace", email="grace@example.com", password="pw-123")
        ),
        expect=lambda w: {
            "id": w.new.pk,
            "username": "grace",
            "email": "grace@example.com",
            "organisation": {"id": w.org.pk, "name": "Northwind Academy"},
        },
    ),
    Case(
        "user.updated",
        act=lambda w: setattrs(w.ada, email="ada.lovelace@example.com"),
        expect=lambda w: {
            "id": w.ada.pk,
            "email": "ada.lovelace@example.com",
            "changed_fields": ["email"],
        },
    ),
    Case(
        "user.addedToGroup",
        arrange=lambda w: make(w, "group", UserGroup.objects.create(organisation=w.org, name="Y9")),
        act=lambda w: w.group.members.add(w.ada),
        expect=lambda w: {
            "user": {"id": w.ada.pk, "username": "ada", "email": "ada@example.com"},
            "group": {"id": w.group.pk, "name": "Y9"},
            "organisation_id": w.org.pk,
        },
    ),
    Case(
        "user.registeredForExam",
        arrange=lambda w: exam(w, S.SCHEDULED),
        act=lambda w: make(w, "reg", ExamRegistration.objects.create(exam=w.exam, user=w.ada)),
        expect=lambda w: {
            "id": w.reg.pk,
            "user": {"id": w.ada.pk, "username": "ada"},
            "exam": {"id": w.exam.pk, "name": "Maths – ada", "state": 1},
            "organisation_id": w.org.pk,
        },
    ),
    Case(
        "assignment.completed",
        arrange=lambda w: make(
            w,
            "assignment",
            Assignment.objects.create(
                organisation=w.org, title="Homework", assignee=w.ada, test=w.test
            ),
        ),
        act=lambda w: w.assignment.complete(),
        expect=lambda w: {
            "id": w.assignment.pk,
            "title": "Homework",
            "status": "completed",
            "assignee": {"id": w.ada.pk, "username": "ada"},
        },
    ),
    Case(
        "flag.planted",
        act=lambda w: make(
            w,
            "flag",
            Flag.objects.create(organisation=w.org, item=w.q1, user=w.ada, comment="Typo?"),
        ),
        expect=lambda w: {
            "id": w.flag.pk,
            "item": {"id": w.q1.pk, "name": "Solve 2x + 3 = 7"},
            "user": {"id": w.ada.pk, "username": "ada"},
            "comment": "Typo?",
        },
    ),
    Case(
        "store.purchase",
        act=lambda w: make(
            w,
            "purchase",
            Purchase.objects.create(
                organisation=w.org, user=w.ada, product=w.product, amount=Decimal("25.00")
            ),
        ),
        expect=lambda w: {
            "id": w.purchase.pk,
            "user": {"id": w.ada.pk, "username": "ada"},
            "product": {"id": w.product.pk, "name": "Exam voucher"},
            "amount": "25.00",
            "currency": "GBP",
            "organisation_id": w.org.pk,
        },
    ),
    Case(
        "invite.sent",
        arrange=lambda w: make(
            w,
            "invite",
            Invite.objects.create(organisation=w.org, email="alan@example.com", invited_by=w.ada),
        ),
        act=lambda w: w.invite.send(),
        expect=lambda w: {
            "id": w.invite.pk,
            "email": "alan@example.com",
            "organisation_id": w.org.pk,
            "invited_by": w.ada.pk,
        },
    ),
]


def test_every_catalogue_event_is_declared_and_has_a_case():
    assert CATALOGUE <= set(registry.event_types)
    assert sorted(case.event for case in CASES) == sorted(CATALOGUE)
    for name in CATALOGUE:
        spec = registry.event_types[name]
        assert spec.category and spec.description and spec.example, name


@pytest.mark.parametrize("case", CASES, ids=str)
def test_host_action_sends_exactly_its_event(
    case, world, subscribe, receiver, other_receiver, commit
):
    subscribe(receiver, [case.event], scope=world.org.scope)
    others = EventType.objects.exclude(name__in=[case.event, *case.also])
    subscribe(other_receiver, list(others.values_list("name", flat=True)), scope=world.org.scope)
    if case.arrange:
        case.arrange(world)

    with commit():
        case.act(world)

    assert receiver.types() == [case.event]
    data = receiver.requests[0].json()["data"]
    expected = case.expect(world)
    assert {k: data.get(k) for k in expected} == expected
    assert other_receiver.requests == []
    # The example payload customers read in the docs has the shape they will receive.
    assert sorted(data) == sorted(registry.event_types[case.event].example)
    body = receiver.requests[0].body
    assert b"password" not in body and b"md5$" not in body and world.ada.password not in str(data)
