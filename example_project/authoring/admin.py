from django.contrib import admin

from .models import AuthoringTask, Item, ItemList, ItemSet, Subject, TagGroup, TagValue


@admin.register(Subject)
class SubjectAdmin(admin.ModelAdmin):
    list_display = ["name", "organisation"]
    list_filter = ["organisation"]


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["name", "subject", "organisation", "deleted_at"]
    list_filter = ["organisation", "subject"]
    search_fields = ["name"]


@admin.register(ItemList)
class ItemListAdmin(admin.ModelAdmin):
    list_display = ["name", "organisation", "is_published"]
    list_filter = ["organisation", "is_published"]
    filter_horizontal = ["items"]


@admin.register(ItemSet)
class ItemSetAdmin(admin.ModelAdmin):
    list_display = ["name", "organisation", "deleted_at"]
    filter_horizontal = ["items"]


class TagValueInline(admin.TabularInline):
    model = TagValue
    extra = 0


@admin.register(TagGroup)
class TagGroupAdmin(admin.ModelAdmin):
    list_display = ["name", "organisation", "authors_may_add_values"]
    inlines = [TagValueInline]


@admin.register(AuthoringTask)
class AuthoringTaskAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "status", "assignee", "organisation"]
    list_filter = ["kind", "status"]


@admin.register(TagValue)
class TagValueAdmin(admin.ModelAdmin):
    list_display = ["value", "group", "created_by", "created_at"]
    list_filter = ["group"]
