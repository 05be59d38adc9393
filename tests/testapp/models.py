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
    """A model with no webhooks: the baseline for overhead measurements."""

    title = models.CharField(max_length=200)
