"""The "Add webhook" configurator: every rule of the form, as an admin meets it."""

import html as html_module
import re

import pytest

from tests.admin.helpers import ADD_URL, change_url, form_errors
from tests.factories import SubscriptionFactory
from webhooks.models import EventType, Subscription

pytestmark = pytest.mark.django_db


def types(*names) -> list[str]:
    return [str(pk) for pk in EventType.objects.filter(name__in=names).values_list("pk", flat=True)]


def some_organisation() -> str:
    """The host has tenants: a superuser's new webhook must name one."""
    from example_project.organisations.models import Organisation

    return Organisation.objects.get_or_create(slug="acme", defaults={"name": "Acme"})[0].scope


def form_data(**overrides) -> dict:
    data = {
        "description": "Grades sync",
        "url": "http://127.0.0.1:9/hook",
        "is_active": "on",
        "event_types": types("article.created", "article.updated"),
        "basic_auth_username": "",
        "basic_auth_password": "",
        "headers": "",
        "owner": "",
        "scope": some_organisation(),
        "_save": "Save",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_adding_a_webhook_saves_it_and_shows_its_secret_once(admin_client, superuser):
    response = admin_client.post(
        ADD_URL, form_data(basic_auth_username="hooks", basic_auth_password="pw")
    )
    sub = Subscription.objects.get()
    assert response.status_code == 302 and response["Location"] == change_url(sub)
    assert sorted(sub.event_types.values_list("name", flat=True)) == [
        "article.created",
        "article.updated",
    ]
    assert sub.owner == superuser and sub.url == "http://127.0.0.1:9/hook"
    assert sub.secret.startswith("whsec_")

    first = admin_client.get(change_url(sub)).content.decode()
    assert "copy it now" in first and sub.secret in first
    again = admin_client.get(change_url(sub)).content.decode()
    assert sub.secret not in again and "copy it now" not in again
    assert f"whsec_…{sub.secret[-4:]}" in again


def test_after_adding_the_next_page_is_always_the_one_with_the_secret(admin_client):
    assert b"_addanother" not in admin_client.get(ADD_URL).content
    for button in ["_continue", "_addanother"]:
        # (two webhooks of one organisation need two URLs)
        response = admin_client.post(
            ADD_URL, {**form_data(url=f"http://127.0.0.1:9/{button}"), button: "1"}
        )
        sub = Subscription.objects.order_by("-created_at").first()
        assert response["Location"] == change_url(sub)
        assert sub.secret in admin_client.get(change_url(sub)).content.decode()


@pytest.mark.parametrize(
    "url, words",
    [
        ("http://10.0.0.5/hook", "10.0.0.5 is a private network address"),
        ("http://169.254.169.254/latest", "link-local address (such as the cloud metadata"),
        ("ftp://example.com/x", "“ftp:” URLs are not accepted"),
        ("https://user:pw@example.com/x", "use the basic-auth fields instead"),
        ("not a url", "Enter the whole URL, starting with https://"),
    ],
)
def test_a_refused_url_is_explained_on_the_url_field(admin_client, settings, url, words):
    settings.WEBHOOKS_ALLOWED_NETWORKS = []
    response = admin_client.post(ADD_URL, form_data(url=url))
    assert response.status_code == 200
    assert words in " ".join(form_errors(response)["url"])
    assert not Subscription.objects.exists()


def test_a_webhook_needs_events_or_all_events(admin_client):
    response = admin_client.post(ADD_URL, form_data(event_types=[]))
    assert form_errors(response)["event_types"] == ["Choose at least one event, or “All events”."]
    assert "null</textarea>" not in response.content.decode()  # empty headers stay empty
    response = admin_client.post(ADD_URL, form_data(event_types=[], all_events="on"))
    assert response.status_code == 302
    assert Subscription.objects.get().all_events


def test_select_all_of_a_category_subscribes_to_every_type_in_it(admin_client):
    response = admin_client.post(
        ADD_URL, form_data(event_types=[], event_types__category=["Articles"])
    )
    assert response.status_code == 302
    chosen = set(Subscription.objects.get().event_types.values_list("name", flat=True))
    assert chosen == set(
        EventType.objects.filter(category="Articles").values_list("name", flat=True)
    )
    assert "webhook.test" not in chosen


def test_events_are_offered_grouped_by_category_with_select_all(admin_client):
    html = admin_client.get(ADD_URL).content.decode()
    assert html.index("<strong>Articles</strong>") < html.index("article.created")
    offered = EventType.objects.exclude(category__in=["Webhooks", "Webhook operations"])
    categories = set(offered.values_list("category", flat=True))
    assert html.count("data-wh-select-all") == len(categories)  # one per category
    assert "An article was created." in html  # each type's description
    # A test event is sent on request, never subscribed to.
    assert "webhook.test" not in html
    # Notices about the tenant's other webhooks are offered apart from the platform's events.
    operational = html[html.index("data-wh-operational") :]
    assert "webhook.disabled" in operational and "webhook.failing" in operational


def test_a_superuser_must_choose_the_organisation_of_a_webhook(admin_client):
    response = admin_client.post(ADD_URL, form_data(scope=""))
    assert form_errors(response)["scope"] == [
        "Choose the organisation whose events this webhook receives."
    ]
    assert not Subscription.objects.exists()


def test_a_webhook_of_no_organisation_says_it_receives_nothing(admin_client):
    sub = SubscriptionFactory(events=["article.created"], scope="")
    html = admin_client.get(change_url(sub)).content.decode()
    assert "belongs to no organisation, so it receives no organisation" in html
    owned = SubscriptionFactory(events=["article.created"], scope=some_organisation())
    assert "wh-no-tenant" not in admin_client.get(change_url(owned)).content.decode()


def test_password_is_write_only_and_empty_keeps_it(admin_client):
    admin_client.post(
        ADD_URL, form_data(basic_auth_username="hooks", basic_auth_password="s3cret-pw")
    )
    sub = Subscription.objects.get()
    page = admin_client.get(change_url(sub)).content.decode()
    assert "s3cret-pw" not in page and "A password is set" in page

    response = admin_client.post(
        change_url(sub), form_data(basic_auth_username="hooks2", basic_auth_password="")
    )
    assert response.status_code == 302
    sub.refresh_from_db()
    assert (sub.basic_auth_username, sub.basic_auth_password) == ("hooks2", "s3cret-pw")

    admin_client.post(
        change_url(sub), form_data(basic_auth_username="hooks2", basic_auth_password="new")
    )
    sub.refresh_from_db()
    assert sub.basic_auth_password == "new"

    admin_client.post(change_url(sub), form_data(basic_auth_username="", basic_auth_password=""))
    sub.refresh_from_db()
    assert (sub.basic_auth_username, sub.basic_auth_password) == ("", "")


def test_basic_auth_rules_are_explained(admin_client):
    response = admin_client.post(ADD_URL, form_data(basic_auth_password="pw"))
    assert form_errors(response)["basic_auth_username"] == [
        "Give a user name to go with the basic-auth password."
    ]
    response = admin_client.post(
        ADD_URL, form_data(basic_auth_username="a:b", basic_auth_password="pw")
    )
    assert "cannot contain “:”" in form_errors(response)["basic_auth_username"][0]


@pytest.mark.parametrize(
    "headers, words",
    [
        ('{"webhook-signature": "v1,forged"}', "is set by the webhook system"),
        ('{"Authorization": "Bearer x"}', "is set by the webhook system"),
        ('{"X Bad": "1"}', "is not a valid header name"),
        ('["X-Team"]', "Headers must be an object"),
        ("{not json", 'Write the headers as JSON, e.g. {"X-Team": "payments"}.'),
    ],
)
def test_extra_headers_are_validated(admin_client, headers, words):
    response = admin_client.post(ADD_URL, form_data(headers=headers))
    assert response.status_code == 200
    assert words in " ".join(form_errors(response)["headers"])


def test_valid_extra_headers_are_saved(admin_client):
    admin_client.post(ADD_URL, form_data(headers='{"X-Team": "payments"}'))
    assert Subscription.objects.get().headers == {"X-Team": "payments"}


def test_superuser_picks_the_organisation_from_the_configured_choices(admin_client, acme, globex):
    html = admin_client.get(ADD_URL).content.decode()
    assert f'<option value="{acme.scope}">Acme</option>' in html
    admin_client.post(ADD_URL, form_data(scope=globex.scope))
    assert Subscription.objects.get().scope == globex.scope
    listing = admin_client.get("/admin/webhooks/subscription/").content.decode()
    assert ">Globex<" in listing  # the list names the organisation, not its scope string


def test_without_scope_choices_the_scope_is_free_text(admin_client, settings):
    settings.WEBHOOKS_SCOPE_CHOICES = None
    html = admin_client.get(ADD_URL).content.decode()
    assert '<input type="text" name="scope"' in html
    admin_client.post(ADD_URL, form_data(scope="tenant-7"))
    assert Subscription.objects.get().scope == "tenant-7"


def test_only_pro_organisations_are_offered(admin_client, acme):
    from example_project.organisations.models import Organisation

    Organisation.objects.create(name="Freeloader", slug="free", is_pro=False)
    html = admin_client.get(ADD_URL).content.decode()
    assert ">Acme</option>" in html and "Freeloader" not in html


def test_a_scope_the_choices_no_longer_list_is_kept(admin_client):
    sub = SubscriptionFactory(scope="org:999", all_events=True)
    html = admin_client.get(change_url(sub)).content.decode()
    assert '<option value="org:999" selected>org:999</option>' in html


def test_tenant_staff_get_their_organisation_and_cannot_pick_another(
    acme_client, acme_staff, acme, globex
):
    html = acme_client.get(ADD_URL).content.decode()
    assert 'name="scope"' not in html and 'name="owner"' not in html
    response = acme_client.post(ADD_URL, form_data(scope=globex.scope, owner="1"))
    assert response.status_code == 302
    sub = Subscription.objects.get()
    assert (sub.scope, sub.owner) == (acme.scope, acme_staff)
    assert '<div class="readonly">Acme</div>' in acme_client.get(change_url(sub)).content.decode()
    acme_client.post(change_url(sub), form_data(scope=globex.scope, description="moved?"))
    sub.refresh_from_db()
    assert sub.scope == acme.scope and sub.description == "moved?"


def test_switching_a_webhook_off_and_on_again(admin_client):
    sub = SubscriptionFactory(all_events=True, url="http://127.0.0.1:9/hook")
    sub.event_types.set(EventType.objects.filter(name="article.created"))
    admin_client.post(change_url(sub), form_data(is_active=None))
    sub.refresh_from_db()
    assert not sub.is_active and sub.disabled_reason == "Switched off by root in the admin."

    Subscription.objects.filter(pk=sub.pk).update(
        disabled_reason="The receiver answered 410 Gone", consecutive_failures=9
    )
    admin_client.post(change_url(sub), form_data())
    sub.refresh_from_db()
    assert sub.is_active and sub.disabled_reason == "" and sub.consecutive_failures == 0


def test_staff_who_may_only_view_never_see_the_password(viewer_client, acme):
    sub = SubscriptionFactory(
        scope=acme.scope, all_events=True, basic_auth_username="u", basic_auth_password="hunter2"
    )
    page = viewer_client.get(change_url(sub))
    assert page.status_code == 200
    html = page.content.decode()
    assert "hunter2" not in html and sub.secret not in html
    assert "Basic-auth password" in html and "(set)" in html


@pytest.mark.parametrize(
    "headers, words",
    [
        ('{"X-Team": "caf\\u00e9 \\ud83d\\ude00"}', "outside Latin-1"),
        ('{"X-Team": "a\\u0000b"}', "control characters"),
    ],
    ids=["emoji", "nul"],
)
def test_header_values_that_cannot_be_sent_are_a_field_error(admin_client, headers, words):
    response = admin_client.post(ADD_URL, form_data(headers=headers))
    assert response.status_code == 200
    assert words in " ".join(form_errors(response)["headers"])
    assert Subscription.objects.count() == 0


def test_a_password_that_cannot_be_sent_is_refused_without_echoing_it(admin_client):
    response = admin_client.post(
        ADD_URL, form_data(basic_auth_username="u", basic_auth_password="zq\U0001f511xv")
    )
    message = " ".join(form_errors(response)["basic_auth_password"])
    assert "outside Latin-1" in message
    html = response.content.decode()
    assert "zq\U0001f511xv" not in html and "\U0001f511" not in html
    assert Subscription.objects.count() == 0


def test_a_form_error_never_silently_drops_the_password(admin_client):
    # An error elsewhere: the page comes back without the password, and says so.
    response = admin_client.post(
        ADD_URL,
        form_data(basic_auth_username="hooks", basic_auth_password="s3cret-pw", url="not a url"),
    )
    assert "s3cret-pw" not in response.content.decode()
    assert "Type the password again" in " ".join(form_errors(response)["basic_auth_password"])
    # Submitted again as it came back (URL fixed, password empty): asked for, not dropped.
    response = admin_client.post(ADD_URL, form_data(basic_auth_username="hooks"))
    assert "Enter the basic-auth password" in " ".join(form_errors(response)["basic_auth_password"])
    assert Subscription.objects.count() == 0
    admin_client.post(ADD_URL, form_data(basic_auth_username="hooks", basic_auth_password="pw2"))
    assert Subscription.objects.get().basic_auth_password == "pw2"


def test_secret_header_values_are_masked_and_kept(admin_client):
    sub = SubscriptionFactory(
        all_events=True, headers={"X-Api-Key": "k-123", "X-Team": "a"}, sensitive_headers=[]
    )
    page = admin_client.get(change_url(sub)).content.decode()
    assert "k-123" not in page and "********" in page
    admin_client.post(
        change_url(sub),
        form_data(
            all_events="on",
            headers='{"X-Api-Key": "********", "X-Team": "b", "X-Partner": "p-1"}',
            sensitive_headers="X-Partner",
        ),
    )
    sub.refresh_from_db()
    assert sub.headers == {"X-Api-Key": "k-123", "X-Team": "b", "X-Partner": "p-1"}
    assert sub.sensitive_headers == ["X-Partner"]
    page = admin_client.get(change_url(sub)).content.decode()
    assert "p-1" not in page and "k-123" not in page


def test_adding_past_the_webhook_limit_is_refused_with_what_to_do(
    acme_client, admin_client, acme, globex, settings
):
    settings.WEBHOOKS_MAX_WEBHOOKS_PER_SCOPE = 1
    SubscriptionFactory(scope=acme.scope, all_events=True)
    response = acme_client.post(ADD_URL, form_data())
    assert response.status_code == 200
    html = response.content.decode()
    assert "already has 1 webhooks, and 1 is the most allowed" in html
    assert "Delete one it no longer needs" in html
    # A superuser adding for Acme is refused the same; Globex still has room.
    response = admin_client.post(ADD_URL, form_data(scope=acme.scope))
    assert "1 is the most allowed" in response.content.decode()
    assert admin_client.post(ADD_URL, form_data(scope=globex.scope)).status_code == 302
    assert Subscription.objects.filter(scope=acme.scope).count() == 1


def test_a_webhook_over_the_limit_can_still_be_changed(admin_client, acme, settings):
    settings.WEBHOOKS_MAX_WEBHOOKS_PER_SCOPE = 1
    first, second = (SubscriptionFactory(scope=acme.scope, all_events=True) for _ in range(2))
    response = admin_client.post(
        change_url(second), form_data(scope=acme.scope, description="still changed")
    )
    assert response.status_code == 302
    second.refresh_from_db()
    assert second.description == "still changed"


@pytest.mark.parametrize(
    "headers, sensitive, named",
    [
        ('{"X-Partner": "********", "X-Team": "a"}', "", "X-Partner"),
        ('{"x-PARTNER": "********"}', "X-Team", "x-PARTNER"),
    ],
    ids=["emptied", "other-name-and-case"],
)
def test_unmarking_a_secret_header_never_shows_its_value(admin_client, headers, sensitive, named):
    sub = SubscriptionFactory(
        all_events=True,
        headers={"X-Partner": "p-2", "X-Team": "a"},
        sensitive_headers=["x-partner"],
    )
    response = admin_client.post(
        change_url(sub),
        form_data(all_events="on", headers=headers, sensitive_headers=sensitive),
    )
    assert response.status_code == 200
    [message] = form_errors(response)["sensitive_headers"]
    assert message.startswith(f"To stop treating the header “{named}” as secret, enter its value")
    assert "p-2" not in response.content.decode()
    sub.refresh_from_db()
    assert sub.headers == {"X-Partner": "p-2", "X-Team": "a"}
    assert sub.sensitive_headers == ["x-partner"]
    assert "p-2" not in admin_client.get(change_url(sub)).content.decode()


def test_a_secret_header_is_unmarked_by_entering_its_value_again(admin_client):
    sub = SubscriptionFactory(
        all_events=True,
        headers={"X-Partner": "p-2", "X-Team": "a"},
        sensitive_headers=["x-partner"],
    )
    response = admin_client.post(
        change_url(sub),
        form_data(
            all_events="on",
            headers='{"X-Partner": "p-public", "X-Team": "a"}',
            sensitive_headers="",
        ),
    )
    assert response.status_code == 302, form_errors(response)
    sub.refresh_from_db()
    assert sub.headers == {"X-Partner": "p-public", "X-Team": "a"} and sub.sensitive_headers == []
    page = admin_client.get(change_url(sub)).content.decode()
    assert "p-public" in page and "p-2" not in page


def test_each_event_type_shows_its_description_as_text_not_only_a_tooltip(admin_client):
    html = admin_client.get(ADD_URL).content.decode()
    picker = html[html.index("data-wh-events") :]
    picker = picker[: picker.index("data-wh-operational")]
    seen = html_module.unescape(re.sub(r"<[^>]+>", " ", picker))  # text, not attributes
    text = re.sub(r"\s+", " ", seen)
    for event_type in EventType.objects.filter(category="Articles"):
        assert f"{event_type.name} {event_type.description}" in text
    # Each checkbox is described by its text, for screen readers too.
    box = re.search(r'<input[^>]*value="(\d+)"[^>]*aria-describedby="([^"]+)"', picker)
    assert box and f'id="{box.group(2)}"' in picker
