"""Item authoring: subjects, items (with a recycle bin), item lists and sets, tags, tasks."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from example_project.organisations.models import Organisation


class Subject(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE)
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RecycleBinQuerySet(models.QuerySet):
    def live(self):
        return self.filter(deleted_at__isnull=True)

    def in_recycle_bin(self):
        return self.filter(deleted_at__isnull=False)


class RecyclableModel(models.Model):
    """Soft delete: ``move_to_recycle_bin()`` is an update; ``delete()`` deletes for good."""

    deleted_at = models.DateTimeField(
        null=True, blank=True, help_text="Set while the object is in the recycle bin."
    )

    objects = RecycleBinQuerySet.as_manager()

    class Meta:
        abstract = True

    @property
    def in_recycle_bin(self) -> bool:
        return self.deleted_at is not None

    def move_to_recycle_bin(self) -> None:
        self.deleted_at = timezone.now()
        self.save()

    def restore(self) -> None:
        self.deleted_at = None
        self.save()


class Item(RecyclableModel):
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE)
    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="items")
    name = models.CharField(max_length=200)
    stem = models.TextField(blank=True, help_text="The question text.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ItemList(models.Model):
    """A list of items. Only published lists are visible to integrations."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE)
    name = models.CharField(max_length=200)
    is_published = models.BooleanField(default=False)
    items = models.ManyToManyField(Item, blank=True, related_name="item_lists")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name


class ItemSet(RecyclableModel):
    """Items that belong together (e.g. a passage and its questions)."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE)
    name = models.CharField(max_length=200)
    items = models.ManyToManyField(Item, blank=True, related_name="item_sets")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name


class TagGroup(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE)
    name = models.CharField(max_length=200)
    authors_may_add_values = models.BooleanField(
        default=False, help_text="Item authors may create new values in this group."
    )

    def __str__(self) -> str:
        return self.name


class TagValue(models.Model):
    group = models.ForeignKey(TagGroup, on_delete=models.CASCADE, related_name="values")
    value = models.CharField(max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.group}: {self.value}"


class AuthoringTask(models.Model):
    class Kind(models.TextChoices):
        AUTHORING = "authoring", "Authoring"
        REVIEW = "review", "Review"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ITEM_SUBMITTED = "item_submitted", "Item submitted"
        FINALISED = "finalised", "Finalised"

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.AUTHORING)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    item = models.ForeignKey(Item, null=True, blank=True, on_delete=models.SET_NULL)
    submitted_at = models.DateTimeField(null=True, blank=True)
    finalised_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name

    def submit_item(self, item: Item) -> None:
        """The assignee hands in the item written for this task."""
        self.item = item
        self.status = self.Status.ITEM_SUBMITTED
        self.submitted_at = timezone.now()
        self.save()

    def finalise(self) -> None:
        self.status = self.Status.FINALISED
        self.finalised_at = timezone.now()
        self.save()
