"""Django admin for the review history (read-only: reviews are written by the tool and the API)."""
from django.contrib import admin

from reviews.models import Review


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ["asset", "reviewer", "kind", "based_on_version", "created_at"]
    list_filter = ["kind"]
    raw_id_fields = ["asset"]
    readonly_fields = ["asset", "reviewer", "kind", "shapes", "based_on_version", "created_at"]
