"""Item Authoring, Tasks and Setup events: declared and bound through the public API."""

import webhooks
from example_project.organisations.models import scope_of

from .models import AuthoringTask, Item, ItemList, ItemSet, Subject, TagValue


def organisation_scope(obj, *related):
    return scope_of(obj.organisation_id)


def _time(value):
    return value.isoformat() if value else None


def subject_data(subject_id):
    subject = Subject.objects.filter(pk=subject_id).first() if subject_id else None
    return {"id": subject.pk, "name": subject.name} if subject else None


def item_payload(item):
    return {
        "id": item.pk,
        "name": item.name,
        "organisation_id": item.organisation_id,
        "subject": subject_data(item.subject_id),
        "in_recycle_bin": item.in_recycle_bin,
        "created_at": _time(item.created_at),
        "updated_at": _time(item.updated_at),
    }


def item_moved_payload(item):
    return {
        "id": item.pk,
        "name": item.name,
        "organisation_id": item.organisation_id,
        "old_subject": subject_data(webhooks.previous_value(item, "subject")),
        "new_subject": subject_data(item.subject_id),
    }


def item_list_payload(item_list):
    return {
        "id": item_list.pk,
        "name": item_list.name,
        "organisation_id": item_list.organisation_id,
        "is_published": item_list.is_published,
        "updated_at": _time(item_list.updated_at),
    }


def item_list_item_payload(item_list, item):
    return {
        "item_list": {"id": item_list.pk, "name": item_list.name},
        "item": {"id": item.pk, "name": item.name},
        "organisation_id": item_list.organisation_id,
    }


def is_published(item_list, *related):
    return item_list.is_published


def item_set_payload(item_set):
    return {
        "id": item_set.pk,
        "name": item_set.name,
        "organisation_id": item_set.organisation_id,
        "in_recycle_bin": item_set.in_recycle_bin,
        "updated_at": _time(item_set.updated_at),
    }


def task_payload(task):
    return {
        "id": task.pk,
        "name": task.name,
        "kind": task.kind,
        "status": task.status,
        "organisation_id": task.organisation_id,
        "assignee": (
            {"id": task.assignee_id, "username": task.assignee.username}
            if task.assignee_id
            else None
        ),
        "item": {"id": task.item_id, "name": task.item.name} if task.item_id else None,
        "submitted_at": _time(task.submitted_at),
        "finalised_at": _time(task.finalised_at),
    }


def tag_value_payload(tag_value):
    return {
        "id": tag_value.pk,
        "value": tag_value.value,
        "tag_group": {"id": tag_value.group_id, "name": tag_value.group.name},
        "organisation_id": tag_value.group.organisation_id,
        "created_by": tag_value.created_by_id,
        "created_at": _time(tag_value.created_at),
    }


def tag_value_scope(tag_value):
    return scope_of(tag_value.group.organisation_id)


SUBJECT = {"id": 3, "name": "Algebra"}
ITEM = {
    "id": 42,
    "name": "Solve for x",
    "organisation_id": 1,
    "subject": SUBJECT,
    "in_recycle_bin": False,
    "created_at": "2026-11-23T09:00:00+00:00",
    "updated_at": "2026-11-23T09:05:00+00:00",
}
ITEM_LIST = {
    "id": 7,
    "name": "Week 1 practice",
    "organisation_id": 1,
    "is_published": True,
    "updated_at": "2026-11-23T09:00:00+00:00",
}
ITEM_SET = {
    "id": 5,
    "name": "Reading passage A",
    "organisation_id": 1,
    "in_recycle_bin": False,
    "updated_at": "2026-11-23T09:00:00+00:00",
}
TASK = {
    "id": 9,
    "name": "Write five algebra items",
    "kind": "authoring",
    "status": "item_submitted",
    "organisation_id": 1,
    "assignee": {"id": 12, "username": "ada"},
    "item": {"id": 42, "name": "Solve for x"},
    "submitted_at": "2026-11-23T10:00:00+00:00",
    "finalised_at": None,
}

LIST_ITEM = {
    "item_list": {"id": 7, "name": "Week 1 practice"},
    "item": {"id": 42, "name": "Solve for x"},
    "organisation_id": 1,
}

AREA = "Item Authoring"
for name, description, example in [
    ("item.created", "An item was created.", ITEM),
    ("item.updated", "An item was changed (moving it to the recycle bin is a change).", ITEM),
    ("item.deleted", "An item was deleted permanently, from the recycle bin.", ITEM),
    ("itemList.created", "A published item list was created.", ITEM_LIST),
    ("itemList.updated", "A published item list was changed (or just published).", ITEM_LIST),
    ("itemList.deleted", "A published item list was deleted.", ITEM_LIST),
    (
        "itemListItem.added",
        "An item was added to a published item list.",
        LIST_ITEM,
    ),
    (
        "itemListItem.removed",
        "An item was removed from a published item list.",
        LIST_ITEM,
    ),
    ("itemSet.created", "An item set was created.", ITEM_SET),
    (
        "itemSet.updated",
        "An item set was changed (moving it to the recycle bin is a change).",
        ITEM_SET,
    ),
    ("itemSet.deleted", "An item set was deleted permanently, from the recycle bin.", ITEM_SET),
    (
        "items.moved",
        "An item was moved to a different subject.",
        {
            "id": 42,
            "name": "Solve for x",
            "organisation_id": 1,
            "old_subject": SUBJECT,
            "new_subject": {"id": 4, "name": "Geometry"},
        },
    ),
]:
    webhooks.event_type(name, category=AREA, description=description, example=example)

webhooks.event_type(
    "task.itemSubmitted",
    category="Tasks",
    description="The assignee of an authoring task submitted an item.",
    example=TASK,
)
webhooks.event_type(
    "task.finalised",
    category="Tasks",
    description="A task (of any type) was finalised.",
    example={**TASK, "status": "finalised", "finalised_at": "2026-11-24T08:00:00+00:00"},
)
webhooks.event_type(
    "tagValue.created",
    category="Setup",
    description="A tag value was created (also by item authors, when the tag group allows it).",
    example={
        "id": 8,
        "value": "Year 9",
        "tag_group": {"id": 2, "name": "Year group"},
        "organisation_id": 1,
        "created_by": 12,
        "created_at": "2026-11-23T09:00:00+00:00",
    },
)

webhooks.on_crud(
    Item,
    created="item.created",
    updated="item.updated",
    deleted="item.deleted",  # Django's delete() is the permanent one; the bin is an update
    payload=item_payload,
    scope=organisation_scope,
)
webhooks.on_change(
    Item,
    "subject",
    "items.moved",
    on_create=False,  # an item created in a subject has not moved
    payload=item_moved_payload,
    scope=organisation_scope,
)
webhooks.on_crud(
    ItemList,
    created="itemList.created",
    updated="itemList.updated",
    deleted="itemList.deleted",
    condition=is_published,
    payload=item_list_payload,
    scope=organisation_scope,
)
webhooks.on_m2m(
    ItemList,
    "items",
    added="itemListItem.added",
    removed="itemListItem.removed",
    condition=is_published,
    payload=item_list_item_payload,
    scope=organisation_scope,
)
webhooks.on_crud(
    ItemSet,
    created="itemSet.created",
    updated="itemSet.updated",
    deleted="itemSet.deleted",
    payload=item_set_payload,
    scope=organisation_scope,
)
webhooks.on_change(
    AuthoringTask,
    "status",
    "task.itemSubmitted",
    to=AuthoringTask.Status.ITEM_SUBMITTED,
    condition=lambda task: task.kind == AuthoringTask.Kind.AUTHORING,
    payload=task_payload,
    scope=organisation_scope,
)
webhooks.on_change(
    AuthoringTask,
    "status",
    "task.finalised",
    to=AuthoringTask.Status.FINALISED,
    payload=task_payload,
    scope=organisation_scope,
)
webhooks.on_create(TagValue, "tagValue.created", payload=tag_value_payload, scope=tag_value_scope)
