"""Django admin for monitoring's data: outlier references and training-data references."""
from django.contrib import admin

from monitoring.models import OutlierReference, TrainingDataReference


@admin.register(OutlierReference)
class OutlierReferenceAdmin(admin.ModelAdmin):
    list_display = ["deployment", "source", "description", "size", "is_active", "created_at"]
    list_filter = ["source", "is_active"]
    exclude = ["model"]


@admin.register(TrainingDataReference)
class TrainingDataReferenceAdmin(admin.ModelAdmin):
    list_display = ["deployment", "dataset_version", "status", "progress", "updated_at"]
