"""The models the guides' examples bind events to (no migrations: created by syncdb)."""

from django.conf import settings
from django.db import models


class Organisation(models.Model):
    name = models.CharField(max_length=100)
    plan = models.CharField(max_length=20, default="pro")  # docs/portal.md: the plan gate


class Membership(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE)


class Tag(models.Model):
    name = models.CharField(max_length=50)


class Article(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE)
    title = models.CharField(max_length=200)
    status = models.CharField(max_length=20, default="draft")
    internal_notes = models.TextField(blank=True)
    tags = models.ManyToManyField(Tag, blank=True)


class Product(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE)
    name = models.CharField(max_length=100)
    price = models.DecimalField(max_digits=8, decimal_places=2)


class Book(Product):  # multi-table inheritance: a Book row and a Product row
    isbn = models.CharField(max_length=20)


class Bestseller(Book):  # a proxy: the same rows, another class
    class Meta:
        proxy = True
