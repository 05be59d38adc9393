"""The site's page events, bound through the registry (docs/host-developers.md)."""

import webhooks
from tests.wagtail_site.models import NewsPage


def news_payload(page):
    return {"id": page.pk, "title": page.title, "intro": page.intro, "live": page.live}


for name, description in [
    ("news.published", "A news page went live."),
    ("news.unpublished", "A news page was taken offline."),
    ("news.updated", "A news page was saved (a draft or a publication)."),
    ("news.deleted", "A news page was deleted."),
]:
    webhooks.event_type(name, category="News", description=description, example={"id": 3})

webhooks.on_change(NewsPage, "live", "news.published", to=True, payload=news_payload)
webhooks.on_change(
    NewsPage, "live", "news.unpublished", to=False, on_create=False, payload=news_payload
)
webhooks.on_update(NewsPage, "news.updated", payload=news_payload)
webhooks.on_delete(NewsPage, "news.deleted", payload=news_payload)
