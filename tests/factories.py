import factory

from webhooks.models import Delivery, Event, EventType, Subscription


class EventTypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EventType
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"thing{n}.happened")
    category = "Things"


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription
        skip_postgeneration_save = True

    url = "https://example.com/hook"
    description = factory.Sequence(lambda n: f"webhook {n}")

    @factory.post_generation
    def events(self, create, extracted, **kwargs):
        """``SubscriptionFactory(events=["article.created"])`` subscribes to those types."""
        if create and extracted:
            self.event_types.set(EventType.objects.filter(name__in=extracted))


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    type = "article.created"
    data = factory.LazyFunction(lambda: {"id": 1})


class DeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Delivery

    event = factory.SubFactory(EventFactory)
    subscription = factory.SubFactory(SubscriptionFactory)
