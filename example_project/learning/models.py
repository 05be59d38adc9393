"""The learning side: users in groups, attempts and overrides, registrations, assignments,
flags on questions, invites."""

import secrets

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

import webhooks
from example_project.organisations.models import Membership, Organisation

User = settings.AUTH_USER_MODEL


def register_user(organisation: Organisation, username: str, **fields):
    """Create a user account on the platform: the user and its membership, together."""
    from django.contrib.auth import get_user_model

    with transaction.atomic():
        password = fields.pop("password", None)
        user = get_user_model()(username=username, **fields)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save()
        Membership.objects.create(user=user, organisation=organisation)
    return user


class UserGroup(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE)
    name = models.CharField(max_length=200)
    members = models.ManyToManyField(User, blank=True, related_name="user_groups")

    def __str__(self) -> str:
        return self.name


class Attempt(models.Model):
    """A user's attempt at a test; ``kind`` tells practice and tests from exams."""

    class Kind(models.TextChoices):
        PRACTICE = "practice", "Practice"
        TEST = "test", "Test"
        EXAM = "exam", "Exam"

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        SUBMITTED = "submitted", "Submitted"
        COMPLETED = "completed", "Completed (marked)"

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="attempts")
    test = models.ForeignKey("testing.Test", on_delete=models.CASCADE, related_name="attempts")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.TEST)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.IN_PROGRESS)
    score = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    max_score = models.DecimalField(max_digits=6, decimal_places=2, default=100)
    started_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.user} – {self.test} ({self.kind})"

    def submit(self) -> None:
        self.status = self.Status.SUBMITTED
        self.submitted_at = timezone.now()
        self.save()

    def complete(self, score) -> None:
        """Marking is done: the attempt is completed with its score."""
        self.status = self.Status.COMPLETED
        self.score = score
        self.completed_at = timezone.now()
        self.save()


class AttemptOverride(models.Model):
    """A person overrides an attempt's result, or reverts an earlier override."""

    attempt = models.ForeignKey(Attempt, on_delete=models.CASCADE, related_name="overrides")
    overridden_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL)
    previous_score = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    new_score = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    is_revert = models.BooleanField(default=False)
    reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Override of {self.attempt}"


class ExamRegistration(models.Model):
    exam = models.ForeignKey("testing.Exam", on_delete=models.CASCADE, related_name="registrations")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="exam_registrations")
    registered_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["exam", "user"], name="one_registration_per_exam")
        ]

    def __str__(self) -> str:
        return f"{self.user} for {self.exam}"


class Assignment(models.Model):
    class Status(models.TextChoices):
        ASSIGNED = "assigned", "Assigned"
        COMPLETED = "completed", "Completed"

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE)
    title = models.CharField(max_length=200)
    assignee = models.ForeignKey(User, on_delete=models.CASCADE, related_name="assignments")
    test = models.ForeignKey("testing.Test", null=True, blank=True, on_delete=models.SET_NULL)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ASSIGNED)
    due_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.title

    def complete(self) -> None:
        self.status = self.Status.COMPLETED
        self.completed_at = timezone.now()
        self.save()


class Flag(models.Model):
    """A flag planted on a question (an item) by a user, e.g. during an attempt."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE)
    item = models.ForeignKey("authoring.Item", on_delete=models.CASCADE, related_name="flags")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="flags")
    attempt = models.ForeignKey(Attempt, null=True, blank=True, on_delete=models.SET_NULL)
    comment = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Flag on {self.item} by {self.user}"


class Invite(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE)
    email = models.EmailField()
    invited_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL)
    token = models.CharField(max_length=64, default=secrets.token_urlsafe, editable=False)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.email

    def send(self) -> None:
        """Send the invite email, then tell the integrations (an explicit event, not a save)."""
        with transaction.atomic():
            # The email would go out here (django.core.mail); the demo only records the time.
            self.sent_at = timezone.now()
            self.save(update_fields=["sent_at"])
            webhooks.send_event(
                "invite.sent",
                {
                    "id": self.pk,
                    "email": self.email,  # the token is a secret: it stays in the email
                    "organisation_id": self.organisation_id,
                    "invited_by": self.invited_by_id,
                    "sent_at": self.sent_at.isoformat(),
                },
                scope=self.organisation.scope,
            )
