"""The catalogues' rules: soft delete, published-only lists, repeatable transitions, tenancy,
exam-only conditions, the store switch, and who may manage the webhooks."""

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import update_last_login
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from example_project.authoring.models import Item, ItemList, ItemSet
from example_project.demo.seed import webhook_managers
from example_project.learning.models import Attempt, register_user
from example_project.testing.models import Exam, ExamState
from tests.factories import SubscriptionFactory
from webhooks.models import Delivery, Event

ROOT = Path(__file__).resolve().parents[2]


def test_moving_to_the_recycle_bin_sends_no_deleted_event(world, subscribe, receiver, commit):
    subscribe(receiver, ["item.deleted", "itemSet.deleted", "item.updated"], scope=world.org.scope)
    item_set = ItemSet.objects.create(organisation=world.org, name="Passage")

    with commit():
        world.q2.move_to_recycle_bin()
        item_set.move_to_recycle_bin()

    assert receiver.types() == ["item.updated"]
    assert receiver.requests[0].json()["data"]["in_recycle_bin"] is True
    assert Item.objects.in_recycle_bin().get() == world.q2


def test_restoring_from_the_recycle_bin_and_deleting_later_sends_one_deleted(
    world, subscribe, receiver, commit
):
    subscribe(receiver, ["item.deleted"], scope=world.org.scope)
    with commit():
        world.q2.move_to_recycle_bin()
        world.q2.restore()
        world.q2.move_to_recycle_bin()
        world.q2.delete()
    assert receiver.types() == ["item.deleted"]


def test_an_unpublished_list_sends_nothing(world, subscribe, receiver, commit):
    subscribe(receiver, scope=world.org.scope)  # all events

    with commit():
        draft = ItemList.objects.create(organisation=world.org, name="Draft")
        draft.items.add(world.q1, world.q2)
        draft.name = "Draft 2"
        draft.save()
        draft.items.remove(world.q1)
        draft.items.clear()
        draft.delete()

    assert receiver.requests == []


def test_publishing_a_list_is_its_first_event(world, subscribe, receiver, commit):
    subscribe(receiver, scope=world.org.scope)
    draft = ItemList.objects.create(organisation=world.org, name="Draft")
    with commit():
        draft.is_published = True
        draft.save()
        draft.items.add(world.q2)
    assert receiver.types() == ["itemList.updated", "itemListItem.added"]


def sitting(world):
    exam = Exam.objects.create(organisation=world.org, test_form=world.form, name="Maths")
    exam.schedule()
    return exam


def test_a_reopened_window_sends_exam_ready_twice(world, subscribe, receiver, commit):
    subscribe(receiver, ["exam.ready"], scope=world.org.scope)
    exam = sitting(world)

    with commit():
        exam.open_window()
        exam.close_window()
        exam.open_window()  # the next day

    assert receiver.types() == ["exam.ready", "exam.ready"]
    assert [r.json()["data"]["previous_state"] for r in receiver.requests] == [
        ExamState.SCHEDULED,
        ExamState.WINDOW_CLOSED,
    ]
    ids = {r.headers["webhook-id"] for r in receiver.requests}
    assert len(ids) == 2  # two events, not a retry of one


def test_exam_started_is_sent_again_after_pause_and_resume(world, subscribe, receiver, commit):
    subscribe(receiver, ["exam.started"], scope=world.org.scope)
    exam = sitting(world)
    exam.open_window()

    with commit():
        exam.start()
        exam.pause()
        exam.resume()

    assert receiver.types() == ["exam.started", "exam.started"]
    assert receiver.requests[1].json()["data"]["previous_state"] == ExamState.PAUSED


def test_saving_an_exam_without_a_state_change_sends_nothing(world, subscribe, receiver, commit):
    subscribe(receiver, scope=world.org.scope)
    exam = sitting(world)
    with commit():
        exam.name = "Maths (renamed)"
        exam.save()
    assert receiver.requests == []


def test_the_exam_state_machine_refuses_a_jump(world):
    exam = sitting(world)
    with pytest.raises(ValidationError, match="cannot go from"):
        exam.warehouse()
    exam.refresh_from_db()
    assert exam.state == ExamState.SCHEDULED


def test_a_practice_attempt_is_not_an_exam(world, subscribe, receiver, commit):
    subscribe(receiver, ["exam.submitted", "exam.completed"], scope=world.org.scope)
    practice = Attempt.objects.create(
        organisation=world.org, user=world.ada, test=world.test, kind=Attempt.Kind.PRACTICE
    )
    with commit():
        practice.submit()
        practice.complete(Decimal("50"))
    assert receiver.requests == []


def test_another_organisations_subscriber_receives_nothing(
    world, other_org, subscribe, receiver, other_receiver, commit
):
    subscribe(receiver, scope=world.org.scope)
    subscribe(other_receiver, scope=other_org.scope)

    with commit():
        register_user(world.org, "grace")
        Item.objects.create(organisation=world.org, subject=world.algebra, name="New")
        world.published.items.add(world.q2)
        world.form.name = "Form A2"
        world.form.save()

    assert sorted(receiver.types()) == [
        "item.created",
        "itemListItem.added",
        "testForm.updated",
        "user.registered",
    ]
    assert other_receiver.requests == []


def test_a_login_or_a_new_password_is_not_a_user_update(world, subscribe, receiver, commit):
    subscribe(receiver, ["user.updated"], scope=world.org.scope)
    with commit():
        update_last_login(None, world.ada)
        world.ada.set_password("another-pass")
        world.ada.save()
    assert receiver.requests == []


def test_a_user_without_an_organisation_raises_nothing(db, subscribe, receiver, commit):
    from django.contrib.auth import get_user_model

    subscribe(receiver, scope="")
    with commit():
        staff = get_user_model().objects.create_user("staff")
        staff.email = "staff@example.com"
        staff.save()
    assert receiver.requests == []


def registry_of_a_fresh_process(store_enabled: str) -> str:
    """The event table of a new process with ``EXAMPLE_STORE_ENABLED`` set: the registry is
    built once at start-up, so the switch can only be seen in a process of its own."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "example_project.settings",
        "EXAMPLE_STORE_ENABLED": store_enabled,
    }
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from webhooks.registry import registry; "
            "from example_project.store.models import Purchase; "
            "print(sorted(registry.event_types)); "
            "print('bindings', [b.event for b in registry.bindings if b.model is Purchase])",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def test_switching_the_store_off_registers_no_store_purchase():
    off = registry_of_a_fresh_process("false")
    on = registry_of_a_fresh_process("true")
    assert "'store.purchase'" in on and "bindings ['store.purchase']" in on
    assert "store.purchase" not in off and "bindings []" in off
    assert "'invite.sent'" in off  # the rest of the platform is unchanged


API = "/api/webhooks/"


def webhook_requests(world):
    """What a member may try on their own organisation's webhooks, with the status that
    means "done": list, read, describe, create, PATCH, rotate the secret, send a test,
    resend a delivery."""
    sub = SubscriptionFactory(url="http://127.0.0.1:9/hook", scope=world.org.scope, all_events=True)
    event = Event.objects.create(type="item.created", data={}, scope=world.org.scope)
    delivery = Delivery.objects.create(event=event, subscription=sub, status="failed")
    new = {"url": "http://127.0.0.1:9/other", "all_events": True}
    return {
        "list": ("get", API + "subscriptions/", None, 200),
        "read": ("get", API + f"subscriptions/{sub.pk}/", None, 200),
        "describe": ("options", API + "subscriptions/", None, 200),
        "create": ("post", API + "subscriptions/", new, 201),
        "change": ("patch", API + f"subscriptions/{sub.pk}/", {"description": "x"}, 200),
        "rotate": ("post", API + f"subscriptions/{sub.pk}/rotate-secret/", None, 200),
        "ping": ("post", API + f"subscriptions/{sub.pk}/ping/", None, 202),
        "resend": ("post", API + f"deliveries/{delivery.pk}/resend/", None, 202),
    }


def answers(user, requests) -> dict:
    client = APIClient()
    client.force_authenticate(user)
    return {
        name: getattr(client, method)(path, data, format="json").status_code
        for name, (method, path, data, _) in requests.items()
    }


def test_a_member_without_webhook_permissions_is_refused_by_the_api(world):
    requests = webhook_requests(world)
    assert answers(world.teacher, requests) == dict.fromkeys(requests, 403)


def test_a_webhook_manager_of_the_organisation_may_do_all_of_it(world):
    requests = webhook_requests(world)
    world.teacher.groups.add(webhook_managers())
    done = {name: status for name, (*_, status) in requests.items()}
    assert answers(type(world.teacher).objects.get(pk=world.teacher.pk), requests) == done
