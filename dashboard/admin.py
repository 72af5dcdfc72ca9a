"""Django admin for every model of the core."""
from django.contrib import admin

from dashboard.models import (
    Annotation, ApiToken, Data, Dataset, DatasetAsset, DatasetVersion, Deployment, ExportJob, Label, Membership, Model,
    ModelVersion, Organization, PredictedAsset, Prediction,
)
from dashboard.views.login import AdminLoginForm

# The admin's login page has the same guard against guessed passwords as Loupe's.
admin.site.login_form = AdminLoginForm


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role", "organization"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "digest", "created_at", "last_used_at"]
    list_filter = ["revoked_at"]

    def has_add_permission(self, request) -> bool:
        # A token is made where its plain value can be shown once: the API tokens page or create_api_token.
        return False


class LabelInline(admin.TabularInline):
    model = Label
    extra = 0


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "type", "champion", "shadow", "min_threshold"]
    list_filter = ["type", "organization"]
    search_fields = ["name"]
    inlines = [LabelInline]


class ModelVersionInline(admin.TabularInline):
    model = ModelVersion
    extra = 0


@admin.register(Model)
class ModelAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "type", "created_at"]
    list_filter = ["type"]
    inlines = [ModelVersionInline]


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "runtime", "created_at"]


@admin.register(Data)
class DataAdmin(admin.ModelAdmin):
    list_display = ["filename", "organization", "content_type", "width", "height", "source", "created_at"]
    list_filter = ["source", "content_type"]
    search_fields = ["filename", "sha256"]
    readonly_fields = ["sha256", "image", "thumbnail", "size"]


class PredictionInline(admin.TabularInline):
    model = Prediction
    extra = 0
    readonly_fields = ["is_shadow", "model_version", "latency", "shapes"]


@admin.register(PredictedAsset)
class PredictedAssetAdmin(admin.ModelAdmin):
    list_display = ["oracle_prediction_id", "deployment", "status", "timestamp", "shape_count", "outlier_score"]
    list_filter = ["status", "deployment"]
    search_fields = ["oracle_prediction_id", "data__filename"]
    raw_id_fields = ["data"]
    inlines = [PredictionInline]


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ["asset", "is_shadow", "model_version", "latency"]
    raw_id_fields = ["asset"]


class AnnotationInline(admin.TabularInline):
    model = Annotation
    extra = 0


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "created_at"]
    search_fields = ["name"]


@admin.register(DatasetVersion)
class DatasetVersionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "type", "created_at"]
    list_filter = ["type"]


@admin.register(DatasetAsset)
class DatasetAssetAdmin(admin.ModelAdmin):
    list_display = ["filename", "version", "created_at"]
    raw_id_fields = ["data", "source_asset"]
    inlines = [AnnotationInline]


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    list_display = ["version", "format", "status", "progress", "created_at"]
