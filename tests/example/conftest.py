from types import SimpleNamespace

import pytest

from example_project.authoring.models import Item, ItemList, Subject, TagGroup
from example_project.learning.models import register_user
from example_project.organisations.models import Organisation
from example_project.store.models import Product
from example_project.testing.models import Test, TestForm


@pytest.fixture
def org(db):
    return Organisation.objects.create(name="Northwind Academy", slug="northwind")


@pytest.fixture
def other_org(db):
    return Organisation.objects.create(name="Contoso Assessments", slug="contoso")


@pytest.fixture
def world(org):
    """A small platform of one organisation. Setting it up raises events nobody is
    subscribed to yet (and whose on-commit work never runs)."""
    algebra = Subject.objects.create(organisation=org, name="Algebra")
    geometry = Subject.objects.create(organisation=org, name="Geometry")
    q1 = Item.objects.create(organisation=org, subject=algebra, name="Solve 2x + 3 = 7")
    q2 = Item.objects.create(organisation=org, subject=algebra, name="Area of a triangle")
    published = ItemList.objects.create(organisation=org, name="Week 1", is_published=True)
    published.items.add(q1)
    test = Test.objects.create(organisation=org, name="Maths end of year")
    form = TestForm.objects.create(test=test, name="Form A")
    paper = TestForm.objects.create(test=test, name="Form P", delivery=TestForm.Delivery.PAPER)
    return SimpleNamespace(
        org=org,
        algebra=algebra,
        geometry=geometry,
        q1=q1,
        q2=q2,
        published=published,
        test=test,
        form=form,
        paper=paper,
        tag_group=TagGroup.objects.create(organisation=org, name="Year group"),
        product=Product.objects.create(organisation=org, name="Exam voucher", price="25.00"),
        ada=register_user(org, "ada", email="ada@example.com", password="s3cret-pass"),
        teacher=register_user(org, "teacher", email="teacher@example.com"),
    )
