"""The data pipeline's data: the feedback loop, continuous training and its experiments, continuous deployment."""
import uuid

from django.db import models

from dashboard.models import DatasetVersion, Deployment, ModelVersion, Organization


class FeedbackLoop(models.Model):
    """Where a deployment's reviewed predictions go when submitted: the attached dataset versions."""

    deployment = models.OneToOneField(Deployment, on_delete=models.CASCADE, related_name="feedback_loop")
    active = models.BooleanField(default=True)
    dataset_versions = models.ManyToManyField(DatasetVersion, blank=True, related_name="feedback_loops")
    # Continuous training compares it with its threshold, and resets it when it trains.
    submitted_since_training = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"feedback loop of {self.deployment_id}"


class Project(models.Model):
    """Groups the experiments continuous training runs for one or more deployments."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="projects")
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="project_unique_name")]

    def __str__(self) -> str:
        return self.name


class TrainingTrigger(models.TextChoices):
    FEEDBACK_LOOP = "FEEDBACK_LOOP", "When enough images are submitted"
    NONE = "NONE", "Only by hand"


class TrainingBackend(models.TextChoices):
    REFERENCE = "reference", "Loupe's reference trainer"
    COMMAND = "command", "A command line of yours"


class ContinuousTraining(models.Model):
    """When a deployment trains a new model version, on what, and how."""

    deployment = models.OneToOneField(Deployment, on_delete=models.CASCADE, related_name="continuous_training")
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="continuous_trainings")
    active = models.BooleanField(default=True)
    trigger = models.CharField(max_length=16, choices=TrainingTrigger.choices, default=TrainingTrigger.FEEDBACK_LOOP)
    threshold = models.PositiveIntegerField(default=100, help_text="Images submitted since the last run.")
    experiment_parameters = models.JSONField(default=dict, blank=True)
    backend = models.CharField(max_length=16, choices=TrainingBackend.choices, default=TrainingBackend.REFERENCE)
    # With the command backend: placeholders {data} (a folder with one COCO folder per alias), {parameters} (a JSON
    # file) and {output} (where it must leave a model file and metrics.json).
    command = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"continuous training of {self.deployment_id}"


class ContinuousTrainingDataset(models.Model):
    """A dataset version experiments train on, under its alias (train, test, eval...)."""

    continuous_training = models.ForeignKey(ContinuousTraining, on_delete=models.CASCADE, related_name="datasets")
    dataset_version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="+")
    alias = models.CharField(max_length=50)

    class Meta:
        ordering = ["alias"]
        constraints = [
            models.UniqueConstraint(fields=["continuous_training", "dataset_version"], name="ct_dataset_once"),
        ]

    def __str__(self) -> str:
        return f"{self.alias}: {self.dataset_version_id}"


class DeploymentPolicy(models.TextChoices):
    DEPLOY_CHAMPION = "DEPLOY_CHAMPION", "Make it the champion"
    DEPLOY_SHADOW = "DEPLOY_SHADOW", "Make it the shadow"
    DEPLOY_MANUAL = "DEPLOY_MANUAL", "Wait for an admin"


class GateMetric(models.TextChoices):
    NONE = "", "No gate"
    MAP = "map", "mAP (COCO AP@[.50:.95])"
    AP50 = "ap50", "AP@.50"
    ACCURACY = "accuracy", "Accuracy"
    F1 = "f1", "F1 at the threshold"


class ContinuousDeployment(models.Model):
    """What becomes of each model version continuous training produces."""

    deployment = models.OneToOneField(Deployment, on_delete=models.CASCADE, related_name="continuous_deployment")
    policy = models.CharField(max_length=16, choices=DeploymentPolicy.choices, default=DeploymentPolicy.DEPLOY_MANUAL)
    active = models.BooleanField(default=True)
    # Promote only a version that beats the champion on this metric, on the same held-out reviewed images.
    gate_metric = models.CharField(max_length=16, choices=GateMetric.choices, default=GateMetric.NONE, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"continuous deployment of {self.deployment_id}: {self.policy}"


class ExperimentStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"
    RUNNING = "RUNNING", "Running"
    SUCCEEDED = "SUCCEEDED", "Succeeded"
    FAILED = "FAILED", "Failed"
    CANCELLED = "CANCELLED", "Cancelled"


class Experiment(models.Model):
    """One training run: what it trained on (frozen copies of the dataset versions), its log, its metrics, the model
    version it produced, and what continuous deployment did with it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="experiments")
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="experiments")
    name = models.CharField(max_length=150)
    status = models.CharField(max_length=16, choices=ExperimentStatus.choices, default=ExperimentStatus.PENDING)
    started_by = models.CharField(max_length=150, help_text='"feedback loop", or who started it by hand.')
    parameters = models.JSONField(default=dict, blank=True)
    backend = models.CharField(max_length=16, choices=TrainingBackend.choices)
    command = models.TextField(blank=True)
    log = models.TextField(blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    base_model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL,
                                           related_name="+", help_text="The champion when the run was made.")
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="experiments", help_text="The version it produced.")
    # What continuous deployment did with the version: champion, shadow, pending (manual), rejected, refused by the
    # gate, or nothing (CD off); `deployment_note` says why in words.
    deployment_action = models.CharField(max_length=16, blank=True)
    deployment_note = models.CharField(max_length=500, blank=True)
    retry_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Written while running: a stale one died.")

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="experiment_unique_name")]
        indexes = [models.Index(fields=["deployment", "created_at"], name="experiment_by_deployment")]

    def __str__(self) -> str:
        return self.name


class ExperimentDataset(models.Model):
    """A frozen copy of a dataset version an experiment trains on: later submissions do not change it."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="datasets")
    alias = models.CharField(max_length=50)
    dataset_version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, related_name="+")
    copied_from = models.ForeignKey(DatasetVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["alias"]

    def __str__(self) -> str:
        return f"{self.alias}: {self.dataset_version_id}"
