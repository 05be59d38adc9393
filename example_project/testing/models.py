"""Test creation and administration: tests, test forms, and exams (sittings) with their states."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from example_project.organisations.models import Organisation


class Test(models.Model):
    __test__ = False  # not a pytest test class

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        LIVE = "live", "Live"
        RETIRED = "retired", "Retired"

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE)
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name

    def retire(self) -> None:
        """Retiring is a change; deleting a retired test removes it for good."""
        self.status = self.Status.RETIRED
        self.save()


class TestForm(models.Model):
    __test__ = False

    class Delivery(models.TextChoices):
        ONLINE = "online", "Online"
        PAPER = "paper", "On paper"

    test = models.ForeignKey(Test, on_delete=models.CASCADE, related_name="forms")
    name = models.CharField(max_length=200)
    delivery = models.CharField(max_length=10, choices=Delivery.choices, default=Delivery.ONLINE)
    items = models.ManyToManyField("authoring.Item", blank=True, related_name="test_forms")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.test} – {self.name}"

    @property
    def organisation_id(self):
        return self.test.organisation_id


class ExamState(models.IntegerChoices):
    """The numbered states of an exam; 19 is the assessment platform's PaperResponseUpload."""

    DRAFT = 0, "Draft"
    SCHEDULED = 1, "Scheduled (form generated, content and settings locked)"
    READY = 2, "Ready (window open)"
    IN_PROGRESS = 3, "In progress"
    PAUSED = 4, "Paused"
    WINDOW_CLOSED = 5, "Window closed"
    FINISHED = 6, "Finished"
    PAPER_AWAITING_MARKING = 7, "Paper script awaiting marking"
    WAREHOUSED = 8, "Warehoused (marking data available)"
    SECURE_MARKER_WAREHOUSED = 9, "Warehoused and marked in the marking product"
    RESCORED = 10, "Rescored"
    PAPER_RESPONSE_UPLOAD = 19, "Awaiting paper response upload"


S = ExamState
#: Which state may follow which: the state machine of a sitting.
TRANSITIONS = {
    S.DRAFT: {S.SCHEDULED},
    S.SCHEDULED: {S.READY},
    S.READY: {S.IN_PROGRESS, S.WINDOW_CLOSED, S.PAPER_RESPONSE_UPLOAD},
    S.IN_PROGRESS: {S.PAUSED, S.WINDOW_CLOSED, S.FINISHED},
    S.PAUSED: {S.IN_PROGRESS, S.WINDOW_CLOSED},
    S.WINDOW_CLOSED: {S.READY, S.FINISHED, S.PAPER_RESPONSE_UPLOAD},
    S.PAPER_RESPONSE_UPLOAD: {S.PAPER_AWAITING_MARKING},
    S.FINISHED: {S.WAREHOUSED, S.PAPER_AWAITING_MARKING},
    S.PAPER_AWAITING_MARKING: {S.WAREHOUSED},
    S.WAREHOUSED: {S.SECURE_MARKER_WAREHOUSED, S.RESCORED},
    S.SECURE_MARKER_WAREHOUSED: {S.RESCORED},
    S.RESCORED: {S.WAREHOUSED, S.SECURE_MARKER_WAREHOUSED},
}


class Exam(models.Model):
    """One sitting of a test form by a candidate, moved through ``ExamState``."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE)
    test_form = models.ForeignKey(TestForm, on_delete=models.PROTECT, related_name="exams")
    candidate = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    name = models.CharField(max_length=200)
    state = models.IntegerField(choices=ExamState.choices, default=ExamState.DRAFT)
    score = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    state_changed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name

    def move_to(self, state: ExamState) -> None:
        if state not in TRANSITIONS.get(ExamState(self.state), set()):
            raise ValidationError(
                f"An exam cannot go from {ExamState(self.state).label!r} to "
                f"{ExamState(state).label!r}."
            )
        self.state = state
        self.save()

    def schedule(self):
        self.move_to(S.SCHEDULED)

    def open_window(self):
        self.move_to(S.READY)

    def close_window(self):
        self.move_to(S.WINDOW_CLOSED)

    def start(self):
        self.move_to(S.IN_PROGRESS)

    def pause(self):
        self.move_to(S.PAUSED)

    def resume(self):
        self.move_to(S.IN_PROGRESS)

    def finish(self):
        self.move_to(S.FINISHED)

    def await_paper_response_upload(self):
        self.move_to(S.PAPER_RESPONSE_UPLOAD)

    def await_paper_marking(self):
        self.move_to(S.PAPER_AWAITING_MARKING)

    def warehouse(self, score=None):
        if score is not None:
            self.score = score
        self.move_to(S.WAREHOUSED)

    def warehouse_in_secure_marker(self, score=None):
        if score is not None:
            self.score = score
        self.move_to(S.SECURE_MARKER_WAREHOUSED)

    def rescore(self, score):
        self.score = score
        self.move_to(S.RESCORED)
