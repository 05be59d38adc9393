"""How a host declares and binds events: found and imported by ``webhooks`` at start-up."""

import webhooks

from .models import Article


def article_payload(article):
    return {"id": article.pk, "title": article.title, "status": article.status}


def tag_payload(article, tag):
    return {"article_id": article.pk, "tag_id": tag.pk, "tag": tag.name}


def tenant(article, *related):
    return article.tenant


for name, description in [
    ("article.created", "An article was created."),
    ("article.updated", "An article was changed."),
    ("article.deleted", "An article was deleted for good."),
    ("article.approved", "An article's status became approved."),
    ("article.published", "A published article was created or changed."),
    ("article.tagged", "A tag was added to an article."),
    ("article.untagged", "A tag was removed from an article."),
    ("article.shared", "Raised from code."),
]:
    webhooks.event_type(name, category="Articles", description=description, example={"id": 1})

webhooks.on_crud(
    Article,
    created="article.created",
    updated="article.updated",
    deleted="article.deleted",
    payload=article_payload,
    scope=tenant,
)
webhooks.on_change(
    Article, "status", "article.approved", to="approved", payload=article_payload, scope=tenant
)
webhooks.on_update(
    Article,
    "article.published",
    condition=lambda a: a.is_published,
    payload=article_payload,
    scope=tenant,
)
webhooks.on_m2m(
    Article,
    "tags",
    added="article.tagged",
    removed="article.untagged",
    payload=tag_payload,
    scope=tenant,
)

# A page tree, bound on its base class only (as a host would bind Wagtail's Page).
from .models import Page  # noqa: E402


def page_payload(page):
    return {"id": page.pk, "title": page.title, "kind": type(page).__name__}


for name in ("page.created", "page.renamed", "page.published", "page.deleted"):
    webhooks.event_type(name, category="Pages", description=f"{name}.", example={"id": 1})
webhooks.on_create(Page, "page.created", payload=page_payload)
webhooks.on_update(Page, "page.renamed", fields=["title"], payload=page_payload)
webhooks.on_change(Page, "live", "page.published", to=True, payload=page_payload)
webhooks.on_delete(Page, "page.deleted", payload=page_payload)
