"""Django admin for the feedback loop."""
from django.contrib import admin

from pipelines.models import FeedbackLoop


@admin.register(FeedbackLoop)
class FeedbackLoopAdmin(admin.ModelAdmin):
    list_display = ["deployment", "active", "submitted_since_training"]
    filter_horizontal = ["dataset_versions"]
