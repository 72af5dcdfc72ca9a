"""The demo's faces deployment for continuous-training tests, and a simulated labeler reviewing its frames.

The demo's frames do not record where their faces are, only what they show (metadata: the sample, and how many
LFW faces a montage pasted). The simulated labeler uses just that, as a person glancing at the frame would: on a
frame without a person it deletes every box; on one with k faces (a montage's count, one for the astronaut and the
cameraman) it keeps the k best-scoring, non-overlapping face boxes of the champion and at most two eye boxes inside
each, and deletes the rest. It draws no face the detector missed entirely, so its "truth" is an approximation.
With keep_eyes=False it labels faces only, as a team that decided eyes are not wanted would: every eye box is
deleted, which a re-scorer can learn.
"""
from dashboard.models import Deployment, Model, ModelSource, PredictedAsset
from dashboard.services.deployments import labels_adopt
from dashboard.shapes import shape_iou
from monitoring.services.ingest import prediction_ingest
from serving.services import deployment_set_model
from serving.services.registry import model_version_create

FACE, EYE = 1, 2
ONE_PERSON = {"astronaut", "camera"}


def faces_deployment(organization, *, count: int, name: str = "faces-entrance", seed: int = 0) -> Deployment:
    """The demo's faces deployment (its Haar champion served by the registry's opencv runtime) with `count` of the
    demo's frames ingested as the champion predicted them."""
    from demo import demo_models, demo_payloads
    from demo.classical import demo_registration

    champion, _ = demo_models("OBJECT_DETECTION")
    deployment = Deployment.objects.create(organization=organization, name=name, type="OBJECT_DETECTION",
                                           min_threshold=0.3)
    labels_adopt(deployment=deployment, labels=dict(champion.labels))
    model = Model.objects.create(organization=organization, name=f"{name}-haar", type="OBJECT_DETECTION")
    contract, _ = demo_registration(champion)
    version = model_version_create(model=model, runtime="opencv", contract=contract, name="haar-default",
                                   labels={str(key): value for key, value in champion.labels.items()},
                                   source=ModelSource.REGISTERED)
    deployment_set_model(deployment=deployment, model_version_id=version.id, shadow=False)
    for index, payload in enumerate(demo_payloads("OBJECT_DETECTION", count, seed=seed)):
        payload.pop("shadow_raw_predictions")
        payload.pop("shadow_latency")
        prediction_ingest(deployment=deployment, payload=payload, idempotency_key=f"{name}-{index}")
    deployment.refresh_from_db()
    return deployment


def simulated_review(asset: PredictedAsset, *, keep_eyes: bool = True) -> list[dict]:
    """What the simulated labeler leaves on the frame (see the module docstring), from the champion's shapes."""
    metadata = asset.data.metadata or {}
    faces = int(metadata.get("pasted_faces", 0)) if metadata.get("sample") == "montage" else (
        1 if metadata.get("sample") in ONE_PERSON else 0)
    shapes = asset.predictions.get(is_shadow=False).shapes
    kept = []
    for shape in sorted((s for s in shapes if s["label_id"] == FACE), key=lambda s: -s["score"]):
        if len(kept) == faces:
            break
        if all(shape_iou(shape, other, width=asset.width, height=asset.height) < 0.3 for other in kept):
            kept.append(shape)
    eyes = []
    for face in kept if keep_eyes else []:
        inside = [s for s in shapes if s["label_id"] == EYE and face["x"] <= s["x"] + s["w"] / 2 <= face["x"] + face["w"]
                  and face["y"] <= s["y"] + s["h"] / 2 <= face["y"] + face["h"]]
        eyes += sorted(inside, key=lambda s: -s["score"])[:2]
    return [{key: shape[key] for key in ("type", "label_id", "x", "y", "w", "h")} for shape in kept + eyes]
