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
