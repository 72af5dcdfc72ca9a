"""What the reference trainer does for the demo's faces: held-out mAP, AP50 and F1 of the base Haar model and of
the re-scored version it trains, and what the CD gate decides from them.

`make bench-reference_trainer ARGS="--frames 200"` (a throwaway PostgreSQL; SQLite works too): the demo's face
frames predicted by the Haar champion, reviewed by the simulated labeler of tests/unit/pipelines/demo_reviews.py
(it keeps the best-scoring boxes up to the faces a frame is known to hold, and deletes the rest; it draws no missed
face), submitted, one experiment run in this process. Prints figures; never fails on them.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0, help="the held-out split's seed")
    parser.add_argument("--faces-only", action="store_true", help="the simulated labeler deletes every eye box")
    arguments = parser.parse_args()
    os.environ["LOUPE_VAR"] = tempfile.mkdtemp(prefix="loupe-bench-")
    os.environ["DJANGO_SETTINGS_MODULE"] = "dashboard.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from dashboard.models import Organization, PredictedAsset
    from dashboard.services.datasets import dataset_create, dataset_version_create
    from pipelines.services.deployment import gate_check
    from pipelines.services.feedback_loop import feedback_loop_setup, feedback_loop_submit
    from pipelines.services.runs import experiment_run
    from pipelines.services.training import continuous_training_setup, experiment_create, project_create
    from reviews.services.review import review_submit
    from tests.unit.pipelines.demo_reviews import faces_deployment, simulated_review

    organization = Organization.objects.create(name="bench")
    labeler = get_user_model().objects.create_user(username="bench-labeler")
    started = time.perf_counter()
    deployment = faces_deployment(organization, count=arguments.frames)
    print(f"{arguments.frames} demo face frames predicted by the Haar champion in {time.perf_counter() - started:.1f} s")
    version = dataset_version_create(dataset=dataset_create(organization=organization, name="faces-reviewed"),
                                     version="v1", type=deployment.type)
    feedback_loop_setup(deployment=deployment, dataset_version=version)
    continuous_training_setup(deployment=deployment, project=project_create(organization=organization, name="faces"),
                              trigger="NONE", experiment_parameters={"seed": arguments.seed})
    boxes = kept = 0
    for asset in PredictedAsset.objects.filter(deployment=deployment).select_related("data"):
        review = simulated_review(asset, keep_eyes=not arguments.faces_only)
        boxes += len(asset.predictions.get(is_shadow=False).shapes)
        kept += len(review)
        review_submit(asset_id=asset.pk, reviewer=labeler, shapes=review, expected_version=None)
    feedback_loop_submit(deployment=deployment, assets=PredictedAsset.objects.filter(deployment=deployment))
    print(f"simulated reviews ({'faces only' if arguments.faces_only else 'faces and eyes'}) kept {kept} of the "
          f"{boxes} stored boxes")
    started = time.perf_counter()
    experiment = experiment_run(experiment_id=experiment_create(deployment=deployment, started_by="bench").pk,
                                worker="bench")
    print(f"experiment {experiment.status} in {time.perf_counter() - started:.1f} s")
    if experiment.status != "SUCCEEDED":
        print(experiment.log)
        return
    metrics = experiment.metrics
    print(f"train {metrics['train_images']} images ({metrics['boxes']} base boxes, {metrics['boxes_kept']} kept), "
          f"held out {metrics['held_out_images']} (seed {metrics['seed']}), min_threshold {metrics['min_threshold']}")
    print(f"{'':10} {'base':>8} {'new':>8}")
    for key in ("map", "ap50", "f1", "precision", "recall"):
        base, new = metrics["base"][key], metrics["new"][key]
        print(f"{key:10} {base if base is None else f'{base:8.3f}'} {new if new is None else f'{new:8.3f}'}")
    # The gate's verdict on the same images, for each metric it can use.
    from pipelines.backends.reference import ReferenceTrainer

    trained = ReferenceTrainer().train(experiment=experiment, workdir=Path(tempfile.mkdtemp()), log=lambda text: None)
    for metric in ("map", "ap50", "f1"):
        passed, why, _ = gate_check(metric=metric, inference_type=deployment.type, evaluation=trained.evaluation)
        print(f"gate {metric}: {'passes' if passed else 'refuses'} — {why}")


if __name__ == "__main__":
    main()
