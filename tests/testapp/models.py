"""A small host domain for the core tests: articles with tags and a soft delete."""

from django.db import models


class Tag(models.Model):
    name = models.CharField(max_length=50)


class Article(models.Model):
    title = models.CharField(max_length=200)
    tenant = models.CharField(max_length=50, blank=True)
    status = models.CharField(max_length=20, default="draft")
    is_published = models.BooleanField(default=False)
    in_recycle_bin = models.BooleanField(default=False)
    secret_note = models.CharField(max_length=100, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="articles")


class Unbound(models.Model):
    """``Article`` without webhooks: the same columns, no binding. The baseline of the
    overhead benchmark, so "bare save" is the same save with nothing bound to it."""

    title = models.CharField(max_length=200)
    tenant = models.CharField(max_length=50, blank=True)
    status = models.CharField(max_length=20, default="draft")
    is_published = models.BooleanField(default=False)
    in_recycle_bin = models.BooleanField(default=False)
    secret_note = models.CharField(max_length=100, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="unbound_articles")


class Page(models.Model):
    """A Wagtail-like page tree: bindings on Page must cover every kind of page."""

    title = models.CharField(max_length=200)
    live = models.BooleanField(default=False)


class BlogPage(Page):
    """A multi-table subclass: Django signals a save with BlogPage as the sender."""

    body = models.TextField(blank=True)


class DraftPage(Page):
    """A proxy: saved through it, the sender is DraftPage."""

    class Meta:
        proxy = True
