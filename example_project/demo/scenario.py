"""A day on the platform, step by step: every event type of both catalogues is raised.

Each step is one committed transaction, done through the models as the platform's own
code would (no webhooks shortcuts), so queue workers can deliver while the walk goes on.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db import transaction

from example_project.authoring.models import (
    AuthoringTask,
    Item,
    ItemList,
    ItemSet,
    Subject,
    TagGroup,
    TagValue,
)
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
from example_project.organisations.models import Organisation
from example_project.store.models import Product, Purchase
from example_project.testing.models import Exam, Test, TestForm


@dataclass
class Step:
    label: str
    run: Callable[[Walk], None]


@dataclass
class Walk:
    """The state one walk through the scenario builds up."""

    organisation: Organisation
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    objects: dict = field(default_factory=dict)

    def __getattr__(self, name):
        try:
            return self.__dict__["objects"][name]
        except KeyError:
            raise AttributeError(name) from None

    def keep(self, **objects) -> None:
        self.objects.update(objects)

    def subject(self, name: str) -> Subject:
        return Subject.objects.get_or_create(organisation=self.organisation, name=name)[0]


def register_learners(w: Walk):
    org = w.organisation
    w.keep(
        ada=register_user(org, f"ada-{w.tag}", email=f"ada-{w.tag}@example.com", first_name="Ada"),
        grace=register_user(
            org, f"grace-{w.tag}", email=f"grace-{w.tag}@example.com", first_name="Grace"
        ),
        teacher=register_user(org, f"teacher-{w.tag}", email=f"teacher-{w.tag}@example.com"),
    )


def update_profile(w: Walk):
    w.ada.last_name = "Lovelace"
    w.ada.email = f"ada.lovelace-{w.tag}@example.com"
    w.ada.save()


def group_learners(w: Walk):
    group = UserGroup.objects.create(organisation=w.organisation, name=f"Year 9 ({w.tag})")
    group.members.add(w.ada, w.grace)


def send_invite(w: Walk):
    invite = Invite.objects.create(
        organisation=w.organisation, email=f"alan-{w.tag}@example.com", invited_by=w.teacher
    )
    invite.send()


def add_tag_value(w: Walk):
    group, _ = TagGroup.objects.get_or_create(
        organisation=w.organisation, name="Year group", defaults={"authors_may_add_values": True}
    )
    TagValue.objects.create(group=group, value=f"Year 9 ({w.tag})", created_by=w.teacher)


def author_items(w: Walk):
    algebra = w.subject("Algebra")
    q1 = Item.objects.create(
        organisation=w.organisation, subject=algebra, name=f"Solve 2x + 3 = 7 ({w.tag})"
    )
    q2 = Item.objects.create(
        organisation=w.organisation, subject=algebra, name=f"Area of a triangle ({w.tag})"
    )
    w.keep(q1=q1, q2=q2)


def edit_item(w: Walk):
    w.q1.stem = "Solve for x: 2x + 3 = 7"
    w.q1.save()


def move_item(w: Walk):
    w.q2.subject = w.subject("Geometry")
    w.q2.save()


def authoring_task(w: Walk):
    task = AuthoringTask.objects.create(
        organisation=w.organisation, name=f"Write a reading item ({w.tag})", assignee=w.teacher
    )
    item = Item.objects.create(
        organisation=w.organisation, subject=w.subject("Reading"), name=f"Main idea ({w.tag})"
    )
    task.submit_item(item)
    w.keep(task=task, q3=item)


def finalise_task(w: Walk):
    w.task.finalise()


def draft_list(w: Walk):
    draft = ItemList.objects.create(organisation=w.organisation, name=f"Week 1 ({w.tag})")
    draft.items.add(w.q1)  # a draft: integrations hear nothing yet
    w.keep(item_list=draft)


def publish_list(w: Walk):
    w.item_list.is_published = True
    w.item_list.save()


def change_list_items(w: Walk):
    w.item_list.items.add(w.q2)
    w.item_list.items.remove(w.q1)


def short_lived_list(w: Walk):
    extra = ItemList.objects.create(
        organisation=w.organisation, name=f"Extra practice ({w.tag})", is_published=True
    )
    extra.delete()


def make_item_set(w: Walk):
    item_set = ItemSet.objects.create(organisation=w.organisation, name=f"Passage A ({w.tag})")
    item_set.items.add(w.q3)
    w.keep(item_set=item_set)


def item_set_life(w: Walk):
    # A later transaction: saves in the one that created it would be part of its creation.
    item_set = w.item_set
    item_set.name = f"Passage A, revised ({w.tag})"
    item_set.save()
    item_set.move_to_recycle_bin()
    item_set.delete()  # emptied from the recycle bin: deleted for good


def recycle_item(w: Walk):
    scrap = Item.objects.create(
        organisation=w.organisation, subject=w.subject("Algebra"), name=f"Scrap ({w.tag})"
    )
    scrap.move_to_recycle_bin()  # an update, not a delete
    scrap.delete()  # emptied from the recycle bin


def build_test(w: Walk):
    test = Test.objects.create(organisation=w.organisation, name=f"Maths end of year ({w.tag})")
    online = TestForm.objects.create(test=test, name="Form A")
    online.items.add(w.q1, w.q2)
    paper = TestForm.objects.create(test=test, name="Form P", delivery=TestForm.Delivery.PAPER)
    spare = TestForm.objects.create(test=test, name="Form B (unused)")
    spare.delete()
    w.keep(test=test, online_form=online, paper_form=paper)


def finalise_test(w: Walk):
    # A later transaction: saves in the one that created them would be part of the creation.
    w.test.status = Test.Status.LIVE
    w.test.save()
    w.online_form.name = "Form A (final)"
    w.online_form.save()


def retire_old_test(w: Walk):
    old = Test.objects.create(organisation=w.organisation, name=f"Old mock ({w.tag})")
    old.retire()
    old.delete()  # from retired to deleted


def schedule_exam(w: Walk):
    exam = Exam.objects.create(
        organisation=w.organisation,
        test_form=w.online_form,
        candidate=w.ada,
        name=f"{w.test.name} – ada",
    )
    ExamRegistration.objects.create(exam=exam, user=w.ada)
    exam.schedule()
    w.keep(exam=exam)


def sit_exam_day_one(w: Walk):
    w.exam.open_window()
    w.exam.start()
    w.exam.pause()
    w.exam.resume()  # exam.started again
    w.exam.close_window()


def sit_exam_day_two(w: Walk):
    w.exam.open_window()  # the window reopens: exam.ready again
    w.exam.start()
    w.exam.finish()


def attempts(w: Walk):
    practice = Attempt.objects.create(
        organisation=w.organisation, user=w.grace, test=w.test, kind=Attempt.Kind.PRACTICE
    )
    practice.submit()
    practice.complete(Decimal("64"))
    exam_attempt = Attempt.objects.create(
        organisation=w.organisation, user=w.ada, test=w.test, kind=Attempt.Kind.EXAM
    )
    exam_attempt.submit()
    w.keep(exam_attempt=exam_attempt)


def plant_flag(w: Walk):
    Flag.objects.create(
        organisation=w.organisation,
        item=w.q1,
        user=w.ada,
        attempt=w.exam_attempt,
        comment="Two answers look right",
    )


def mark_exam(w: Walk):
    w.exam_attempt.complete(Decimal("72"))
    w.exam.warehouse(score=Decimal("72"))
    w.exam.warehouse_in_secure_marker()


def override_and_rescore(w: Walk):
    attempt = w.exam_attempt
    AttemptOverride.objects.create(
        attempt=attempt,
        overridden_by=w.teacher,
        previous_score=Decimal("72"),
        new_score=Decimal("75"),
        reason="Question 4 accepts both answers",
    )
    AttemptOverride.objects.create(
        attempt=attempt,
        overridden_by=w.teacher,
        previous_score=Decimal("75"),
        new_score=Decimal("72"),
        is_revert=True,
        reason="Reverted after moderation",
    )
    w.exam.rescore(Decimal("74"))
    w.exam.warehouse()  # the remark's marking data: exam.changed again


def paper_exam(w: Walk):
    exam = Exam.objects.create(
        organisation=w.organisation,
        test_form=w.paper_form,
        candidate=w.grace,
        name=f"{w.test.name} – grace (paper)",
    )
    ExamRegistration.objects.create(exam=exam, user=w.grace)
    exam.schedule()
    exam.open_window()
    exam.await_paper_response_upload()
    exam.await_paper_marking()
    exam.warehouse(score=Decimal("58"))


def complete_assignment(w: Walk):
    assignment = Assignment.objects.create(
        organisation=w.organisation, title=f"Algebra homework ({w.tag})", assignee=w.grace
    )
    assignment.complete()


def store_purchase(w: Walk):
    product, _ = Product.objects.get_or_create(
        organisation=w.organisation, name="Exam voucher", defaults={"price": Decimal("25.00")}
    )
    Purchase.objects.create(
        organisation=w.organisation,
        user=w.ada,
        product=product,
        amount=product.price,
        currency=product.currency,
    )


def steps() -> list[Step]:
    walk = [
        Step("Register three learners", register_learners),
        Step("Ada updates her profile", update_profile),
        Step("Put the learners in a group", group_learners),
        Step("Invite a colleague", send_invite),
        Step("An author adds a tag value", add_tag_value),
        Step("Author two items", author_items),
        Step("Edit an item", edit_item),
        Step("Move an item to Geometry", move_item),
        Step("An authoring task: item submitted", authoring_task),
        Step("Finalise the task", finalise_task),
        Step("Draft an item list (silent)", draft_list),
        Step("Publish the item list", publish_list),
        Step("Add and remove list items", change_list_items),
        Step("A published list, deleted", short_lived_list),
        Step("An item set is made", make_item_set),
        Step("The item set: changed, binned, deleted", item_set_life),
        Step("An item: binned, then deleted for good", recycle_item),
        Step("Build a test and its forms", build_test),
        Step("Put the test live, rename a form", finalise_test),
        Step("Retire and delete an old test", retire_old_test),
        Step("Schedule an exam, register Ada", schedule_exam),
        Step("Day one: start, pause, resume, close", sit_exam_day_one),
        Step("Day two: the window reopens", sit_exam_day_two),
        Step("Submit a practice and an exam attempt", attempts),
        Step("Ada flags a question", plant_flag),
        Step("Mark the exam", mark_exam),
        Step("Override, revert, rescore", override_and_rescore),
        Step("A paper exam, uploaded by hand", paper_exam),
        Step("Complete an assignment", complete_assignment),
    ]
    if settings.EXAMPLE_STORE_ENABLED:
        walk.append(Step("Buy an exam voucher", store_purchase))
    return walk


def run(organisation: Organisation, on_step: Callable[[int, Step], None] | None = None) -> Walk:
    """Walk ``organisation`` through the scenario, one committed transaction per step."""
    walk = Walk(organisation)
    for number, step in enumerate(steps(), start=1):
        with transaction.atomic():
            step.run(walk)
        if on_step:
            on_step(number, step)
    return walk
