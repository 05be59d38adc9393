"""An optional store: users buy things (courses, exam vouchers). Switched by a setting."""

from django.conf import settings
from django.db import models

from example_project.organisations.models import Organisation


class Product(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE)
    name = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=8, decimal_places=2)
    currency = models.CharField(max_length=3, default="GBP")

    def __str__(self) -> str:
        return self.name


class Purchase(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    product = models.ForeignKey(Product, on_delete=models.PROTECT)
    quantity = models.PositiveIntegerField(default=1)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3, default="GBP")
    purchased_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.user} bought {self.product}"
