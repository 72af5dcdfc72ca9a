"""A deployment seen from client code: its settings, models, pipelines, and the predictions it serves and monitors."""

from __future__ import annotations

import base64
import json
import uuid
import warnings
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Union

from loupe_sdk.campaign import ReviewCampaign
from loupe_sdk.dataset import DatasetVersion
from loupe_sdk.exceptions import BadRequestError, InvalidQueryError, NotFoundError
from loupe_sdk.http import Multipart, Transport
from loupe_sdk.images import guess_content_type, normalize_content_type
from loupe_sdk.model import ModelVersion
from loupe_sdk.predicted_asset import PredictedAsset
from loupe_sdk.project import Project
from loupe_sdk.tag import Tag, TagsGiven, tag_names
from loupe_sdk.types.enums import (
    ContinuousDeploymentPolicy,
    ContinuousTrainingTrigger,
    ServiceMetrics,
    SupportedContentType,
    member_of,
)
from loupe_sdk.types.schemas_prediction import PredictionFormat
from loupe_sdk.worker import Worker

Prediction = Union[PredictionFormat, Mapping[str, Any]]
Identifier = Union[str, uuid.UUID]
Timestamp = Union[float, int, datetime]
# Anything with an `id` (a Data, a PredictedAsset, a version), a dict with "id", or the id itself.
Referenced = Union[Any, Mapping[str, Any], Identifier]

DEFAULT_PAGE_SIZE = 100


class Deployment:
    def __init__(self, transport: Transport, info: Dict[str, Any]) -> None:
        self._transport = transport
        self._apply(info)

    def _apply(self, info: Dict[str, Any]) -> None:
        self._info = info
        self.id = str(info["id"])
        self.name: str = info.get("name", "")
        self.type: str = info.get("type", "")
        self.organization_id: Optional[str] = info.get("organization_id")
        self.organization_name: Optional[str] = info.get("organization_name")
        self.min_threshold: Optional[float] = info.get("min_threshold")
        self.tags: List[str] = list(info.get("tags") or [])
        self.labels: List[Dict[str, Any]] = list(info.get("labels") or [])
        # Both hosts are the platform's own unless the server says monitoring or serving lives elsewhere.
        self.oracle_host: str = (info.get("oracle_host") or self._transport.host).rstrip("/")
        self.serving_host: str = (info.get("serving_host") or self._transport.host).rstrip("/")

    @property
    def _path(self) -> str:
        return f"/api/deployment/{self.id}"

    def __repr__(self) -> str:
        return f"Deployment(name={self.name!r}, type={self.type!r}, id={self.id!r})"

    # Settings and models

    def retrieve_information(self) -> Dict[str, Any]:
        """Fetch this deployment's current information (models, hosts, counts) and return it as a dict."""
        info = self._transport.platform("GET", self._path)
        self._apply(info)
        return info

    def update(
        self,
        name: Optional[str] = None,
        target_datalake: Any = None,
        min_threshold: Optional[float] = None,
    ) -> None:
        """Rename the deployment or change the score under which its shapes are hidden.

        `target_datalake` is accepted for compatibility and ignored: Loupe has one datalake per organization.
        """
        changes: Dict[str, Any] = {}
        if name is not None:
            changes["name"] = name
        if min_threshold is not None:
            changes["min_threshold"] = min_threshold
        if not changes:
            return
        answer = self._transport.platform("PATCH", self._path, json=changes)
        if isinstance(answer, dict) and "id" in answer:
            self._apply(answer)
        else:
            self._apply({**self._info, **changes})

    def delete(self, force_delete: bool = False) -> None:
        """Delete this deployment; `force_delete` also deletes it while it still holds predictions or pipelines."""
        self._transport.platform("DELETE", self._path, params={"force_delete": "true" if force_delete else "false"})

    def add_tags(self, tags: TagsGiven) -> None:
        """Tag this deployment; tags are names or Tag objects, one or a list."""
        self._transport.platform("POST", self._path + "/tags", json={"tags": tag_names(tags)})

    def remove_tags(self, tags: TagsGiven) -> None:
        self._transport.platform("DELETE", self._path + "/tags", json={"tags": tag_names(tags)})

    def get_tags(self) -> List[Tag]:
        answer = self._transport.platform("GET", self._path + "/tags")
        return [Tag(item) for item in answer.get("items") or []]

    def list_workers(self) -> List[Worker]:
        """The users who may work on this deployment, with their role in its organization."""
        answer = self._transport.platform("GET", self._path + "/workers")
        return [Worker(item) for item in answer.get("items") or []]

    def set_model(self, model_version: Union[ModelVersion, Identifier]) -> None:
        """Make this model version the champion."""
        self._transport.platform("POST", self._path + "/model", json={"model_version_id": _id_of(model_version)})

    def set_shadow_model(self, shadow_model_version: Union[ModelVersion, Identifier]) -> None:
        """Make this model version the shadow, run beside the champion for comparison."""
        self._transport.platform(
            "POST", self._path + "/shadow", json={"model_version_id": _id_of(shadow_model_version)}
        )

    def get_model_version(self) -> ModelVersion:
        """The current champion; NotFoundError when the deployment has none."""
        return self._model_in_role("champion")

    def get_shadow_model(self) -> ModelVersion:
        """The current shadow; NotFoundError when the deployment has none."""
        return self._model_in_role("shadow")

    def _model_in_role(self, role: str) -> ModelVersion:
        version = self.retrieve_information().get(role)
        if not version:
            raise NotFoundError(f"deployment {self.name!r} has no {role} model version")
        return ModelVersion(version)

    # Monitoring

    def monitor(
        self,
        image_path: Union[str, Path],
        latency: float,
        height: int,
        width: int,
        prediction: Prediction,
        source: Optional[str] = None,
        tags: Optional[List[str]] = None,
        timestamp: Optional[Timestamp] = None,
        model_version: Optional[ModelVersion] = None,
        shadow_model_version: Optional[ModelVersion] = None,
        shadow_latency: Optional[float] = None,
        shadow_raw_predictions: Optional[Prediction] = None,
        shadow_prediction: Optional[Prediction] = None,
        content_type: Optional[Union[SupportedContentType, str]] = None,
        metadata: Optional[Dict[str, Any]] = None,
    ) -> Dict[str, Any]:
        """Send one prediction made on an image file; the answer's `id` is the oracle_prediction_id.

        `height` and `width` are those the prediction's coordinates refer to. `model_version` and
        `shadow_model_version` are ignored: the server records the versions the deployment runs.
        `shadow_raw_predictions` is the older name of `shadow_prediction`.
        """
        path = Path(image_path)
        resolved_type = normalize_content_type(content_type) if content_type else guess_content_type(path.name)
        return self.monitor_bytes(
            path.read_bytes(), resolved_type, path.name, latency, height, width, prediction,
            source=source, tags=tags, timestamp=timestamp, shadow_latency=shadow_latency,
            shadow_prediction=shadow_prediction, shadow_raw_predictions=shadow_raw_predictions, metadata=metadata,
        )

    def monitor_bytes(
        self,
        raw_image: bytes,
        content_type: Union[SupportedContentType, str],
        filename: str,
        latency: float,
        height: int,
        width: int,
        prediction: Prediction,
        source: Optional[str] = None,
        tags: Optional[List[str]] = None,
        timestamp: Optional[Timestamp] = None,
        shadow_latency: Optional[float] = None,
        shadow_prediction: Optional[Prediction] = None,
        metadata: Optional[Dict[str, Any]] = None,
        shadow_raw_predictions: Optional[Prediction] = None,
    ) -> Dict[str, Any]:
        """Send one prediction made on an image already in memory; see `monitor`."""
        return self._send_prediction(
            raw_image=raw_image,
            content_type=normalize_content_type(content_type),
            filename=filename,
            latency=latency,
            height=height,
            width=width,
            prediction=prediction,
            source=source,
            tags=tags,
            timestamp=timestamp,
            shadow_latency=shadow_latency,
            shadow_prediction=_one_shadow(shadow_prediction, shadow_raw_predictions),
            metadata=metadata,
        )

    def monitor_data(
        self,
        data: Referenced,
        latency: float,
        height: int,
        width: int,
        prediction: Prediction,
        tags: TagsGiven = None,
        timestamp: Optional[Timestamp] = None,
        shadow_latency: Optional[float] = None,
        shadow_prediction: Optional[Prediction] = None,
    ) -> Dict[str, Any]:
        """Send one prediction made on an image already stored as a Data (given as itself, a dict or its id)."""
        body = {
            "data_id": _id_of(data),
            **_prediction_fields(
                latency=latency,
                height=height,
                width=width,
                prediction=prediction,
                tags=tags,
                timestamp=timestamp,
                shadow_latency=shadow_latency,
                shadow_prediction=shadow_prediction,
            ),
        }
        return self._post_prediction(body)

    def _send_prediction(
        self,
        *,
        raw_image: bytes,
        content_type: str,
        filename: str,
        source: Optional[str],
        metadata: Optional[Dict[str, Any]],
        **fields: Any,
    ) -> Dict[str, Any]:
        body: Dict[str, Any] = {
            "filename": filename,
            "content_type": content_type,
            "image": base64.b64encode(raw_image).decode("ascii"),
            **_prediction_fields(**fields),
        }
        optional = {"source": source, "metadata": metadata}
        body.update({key: value for key, value in optional.items() if value is not None})
        return self._post_prediction(body)

    def _post_prediction(self, body: Dict[str, Any]) -> Dict[str, Any]:
        return self._transport.monitoring(
            "POST",
            self.oracle_host,
            self.id,
            self._path + "/predictions",
            json=body,
            # One key per call, reused by every retry, so that a retry after a lost answer cannot store twice.
            idempotency_key=str(uuid.uuid4()),
        )

    def monitor_shadow(
        self, predicted_asset: PredictedAsset, shadow_latency: float, shadow_prediction: Prediction
    ) -> Dict[str, Any]:
        """Add the shadow model's prediction to an asset already monitored."""
        if not predicted_asset.oracle_prediction_id:
            raise ValueError(f"{predicted_asset!r} has no oracle_prediction_id to attach a shadow prediction to")
        return self.monitor_shadow_from_oracle_prediction_id(
            predicted_asset.oracle_prediction_id, shadow_latency, shadow_prediction
        )

    def monitor_shadow_from_oracle_prediction_id(
        self, oracle_prediction_id: Identifier, shadow_latency: float, shadow_prediction: Prediction
    ) -> Dict[str, Any]:
        """Add the shadow model's prediction to the prediction `monitor` answered with this id."""
        return self._transport.monitoring(
            "POST",
            self.oracle_host,
            self.id,
            f"/api/prediction/{oracle_prediction_id}/shadow",
            json={"shadow_raw_predictions": _raw(shadow_prediction), "shadow_latency": shadow_latency},
            idempotency_key=str(uuid.uuid4()),
        )

    # Serving

    def predict(
        self,
        file_path: Union[str, Path],
        tags: TagsGiven = None,
        source: Optional[Any] = None,
        metadata: Optional[Dict[str, Any]] = None,
        monitor: bool = True,
    ) -> Dict[str, Any]:
        """Have the champion predict on an image file; with `monitor`, the prediction is also monitored.

        The answer holds the prediction, its `latency` and, when monitored, its `oracle_prediction_id`.
        """
        path = Path(file_path)
        return self.predict_bytes(
            path.name, path.read_bytes(), tags=tags, source=source, metadata=metadata, monitor=monitor
        )

    def predict_bytes(
        self,
        filename: str,
        raw_image: bytes,
        tags: TagsGiven = None,
        source: Optional[Any] = None,
        metadata: Optional[Dict[str, Any]] = None,
        monitor: bool = True,
    ) -> Dict[str, Any]:
        """Have the champion predict on an image in memory; its type is told from `filename`. See `predict`."""
        form: Multipart = [("media", (filename, raw_image, guess_content_type(filename)))]
        if source is not None:
            # A DataSource-like object is sent by its name.
            form.append(("source", (None, str(getattr(source, "name", source)))))
        form.extend(_tags_form(tags))
        if metadata is not None:
            form.append(("metadata", (None, json.dumps(metadata))))
        form.append(("monitor", (None, _flag(monitor))))
        return self._serve(self._path + "/predict", form)

    def predict_data(self, data: Referenced, tags: TagsGiven = None, monitor: bool = True) -> Dict[str, Any]:
        """Have the champion predict on an image already stored as a Data (given as itself, a dict or its id)."""
        form: Multipart = [("data_id", (None, _id_of(data))), *_tags_form(tags), ("monitor", (None, _flag(monitor)))]
        return self._serve(self._path + "/predict", form)

    def predict_shadow(
        self, predicted_asset: Union[PredictedAsset, Identifier], monitor: bool = True
    ) -> Dict[str, Any]:
        """Have the shadow model predict on an asset already predicted; with `monitor`, it is stored as its shadow."""
        form: Multipart = [
            ("predicted_asset_id", (None, _id_of(predicted_asset))),
            ("monitor", (None, _flag(monitor))),
        ]
        return self._serve(self._path + "/predict/shadow", form)

    def _serve(self, path: str, form: Multipart) -> Dict[str, Any]:
        return self._transport.serving(
            "POST",
            self.serving_host,
            self.id,
            path,
            multipart=form,
            # As for monitoring: a retry after a lost answer must not run and store the prediction twice.
            idempotency_key=str(uuid.uuid4()),
        )

    # Stats

    def get_stats(
        self,
        service: Union[ServiceMetrics, str],
        model_version: Optional[Union[ModelVersion, Identifier]] = None,
        from_timestamp: Optional[Timestamp] = None,
        to_timestamp: Optional[Timestamp] = None,
        since: Optional[int] = None,
        includes: Optional[Union[Iterable[Union[PredictedAsset, Identifier]], PredictedAsset, Identifier]] = None,
        excludes: Optional[Union[Iterable[Union[PredictedAsset, Identifier]], PredictedAsset, Identifier]] = None,
        tags: TagsGiven = None,
    ) -> Dict[str, Any]:
        """Statistics of one ServiceMetrics (a member or its name), over the predictions the filters keep.

        Timestamps are epoch seconds or datetimes; `since` is a number of seconds before now; `includes` and
        `excludes` list predicted assets (or their ids) to keep only, or to leave out.
        """
        metric = member_of(ServiceMetrics, service)
        params = {
            "service": metric.service,
            "metric": metric.name,
            "model_id": _id_of(model_version) if model_version is not None else None,
            "from_timestamp": _epoch(from_timestamp),
            "to_timestamp": _epoch(to_timestamp),
            "since": int(since) if since is not None else None,
            "includes": _joined_ids(includes),
            "excludes": _joined_ids(excludes),
            "tags": ",".join(tag_names(tags)) if tags is not None else None,
        }
        path = self._path + ("/stats" if metric.is_aggregation else "/predictions/stats")
        return self._transport.platform("GET", path, params=params)

    # Predicted assets

    def find_predicted_asset(
        self,
        id: Optional[Identifier] = None,
        oracle_prediction_id: Optional[Identifier] = None,
        object_name: Optional[str] = None,
        filename: Optional[str] = None,
        data_id: Optional[Identifier] = None,
    ) -> PredictedAsset:
        """The one predicted asset matching every criterion given.

        NotFoundError when none matches; InvalidQueryError when the criteria are unusable or match several.
        """
        criteria = {
            "id": id,
            "oracle_prediction_id": oracle_prediction_id,
            "object_name": object_name,
            "filename": filename,
            "data_id": data_id,
        }
        params = {key: str(value) for key, value in criteria.items() if value is not None}
        if not params:
            raise InvalidQueryError("give at least one of: " + ", ".join(criteria))
        with _as_invalid_query():
            return PredictedAsset(self._transport.platform("GET", self._path + "/predictedassets/find", params=params), self._transport)

    def list_predicted_assets(
        self,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
        page_size: Optional[int] = None,
        order_by: Optional[Union[str, Sequence[str]]] = None,
        q: Optional[str] = None,
    ) -> List[PredictedAsset]:
        """Predicted assets of this deployment, fetched page by page until `limit` of them (all when None).

        `order_by` names fields, a leading "-" for descending; `q` is a query in Loupe's query language.
        """
        size = page_size or DEFAULT_PAGE_SIZE
        ordering = order_by if order_by is None or isinstance(order_by, str) else ",".join(order_by)
        params: Dict[str, Any] = {"offset": offset, "order_by": ordering, "q": q}
        assets: List[PredictedAsset] = []
        while limit is None or len(assets) < limit:
            params["limit"] = size if limit is None else min(size, limit - len(assets))
            with _as_invalid_query():
                page = self._transport.platform("GET", self._path + "/predictedassets", params=params)
            assets.extend(PredictedAsset(item, self._transport) for item in page.get("items") or [])
            cursor = page.get("next_cursor")
            if not cursor or not page.get("items"):
                break
            # The cursor already encodes where the offset started.
            params.update(cursor=cursor, offset=None)
        return assets if limit is None else assets[:limit]

    # Feedback loop and training data

    def setup_feedback_loop(self, dataset_version: Optional[Union[DatasetVersion, Identifier]] = None) -> None:
        """Set up (and turn on) the feedback loop; a version given is attached, as attach_... would do."""
        body = {"dataset_version_id": _id_of(dataset_version)} if dataset_version is not None else {}
        self._transport.platform("POST", self._path + "/pipeline/fl/setup", json=body)

    def attach_dataset_version_to_feedback_loop(self, dataset_version: Union[DatasetVersion, Identifier]) -> None:
        """Submitted predictions will also be added to this dataset version."""
        self._transport.platform(
            "POST", self._path + "/fl/datasets", json={"dataset_version_id": _id_of(dataset_version)}
        )

    def detach_dataset_version_from_feedback_loop(self, dataset_version: Union[DatasetVersion, Identifier]) -> None:
        self._transport.platform(
            "DELETE", self._path + "/fl/datasets", json={"dataset_version_id": _id_of(dataset_version)}
        )

    def list_feedback_loop_datasets(self) -> List[DatasetVersion]:
        """The dataset versions the feedback loop adds submitted predictions to."""
        answer = self._transport.platform("GET", self._path + "/fl/datasets")
        return [DatasetVersion(self._transport, item) for item in answer.get("items") or []]

    def toggle_feedback_loop(self, active: bool) -> None:
        self._transport.platform("PUT", self._path + "/pipeline/fl", json={"active": bool(active)})

    def submit_to_feedback_loop(
        self, predicted_assets: Optional[Sequence[Union[PredictedAsset, Identifier]]] = None, q: Optional[str] = None
    ) -> Dict[str, int]:
        """Add REVIEWED predicted assets (given, or matching the query `q`) to the feedback loop's versions.

        Returns {"submitted", "skipped", "added", "updated"}; assets not REVIEWED are skipped, and an image a
        dataset version holds already is updated with the newest review, not added twice. Give assets or q, not both.
        """
        if (predicted_assets is None) == (q is None):
            raise ValueError("give predicted_assets or q, not both")
        if q is not None:
            body: Dict[str, Any] = {"q": q}
        else:
            body = {"predicted_asset_ids": [a.id if isinstance(a, PredictedAsset) else str(a) for a in predicted_assets]}
        return self._transport.platform("POST", self._path + "/pipeline/fl/submit", json=body)

    def set_training_data(self, dataset_version: Union[DatasetVersion, Identifier]) -> None:
        """Measure outlier scores against this dataset version; a worker computes it (see the status check)."""
        self._transport.platform(
            "POST", self._path + "/pipeline/td/setup", json={"dataset_version_id": _id_of(dataset_version)}
        )

    def check_training_data_metrics_status(self) -> Optional[str]:
        """PENDING, COMPUTING, READY or FAILED; None when no training data is set."""
        return self._transport.platform("GET", self._path + "/pipeline/td/check").get("status")

    def disable_training_data_reference(self) -> None:
        """Measure outlier scores against the deployment's own history again."""
        self._transport.platform("PUT", self._path + "/pipeline/td/disable")

    # Continuous training and deployment

    def setup_continuous_training(
        self,
        project: Union[Project, Identifier],
        dataset_version: Optional[Any] = None,
        model_version: Optional[Any] = None,
        trigger: Optional[Union[ContinuousTrainingTrigger, str]] = None,
        threshold: Optional[int] = None,
        experiment_parameters: Optional[Dict[str, Any]] = None,
        scan_config: Optional[Dict[str, Any]] = None,
    ) -> None:
        """Set up (and turn on) continuous training: an experiment in `project` each time `trigger` fires.

        With the FEEDBACK_LOOP trigger, it fires once `threshold` more predictions have been reviewed; the
        experiment trains on the versions attached with attach_dataset_version_to_continuous_training.
        `dataset_version`, `model_version` and `scan_config` are deprecated and ignored.
        """
        deprecated = {"dataset_version": dataset_version, "model_version": model_version, "scan_config": scan_config}
        for name, value in deprecated.items():
            if value is not None:
                warnings.warn(
                    f"setup_continuous_training's {name} is deprecated and ignored", DeprecationWarning, stacklevel=2
                )
        body: Dict[str, Any] = {"project_id": _id_of(project)}
        optional = {
            "trigger": member_of(ContinuousTrainingTrigger, trigger).value if trigger is not None else None,
            "threshold": threshold,
            "experiment_parameters": experiment_parameters,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        self._transport.platform("POST", self._path + "/pipeline/ct", json=body)

    def attach_dataset_version_to_continuous_training(
        self, alias: str, dataset_version: Union[DatasetVersion, Identifier]
    ) -> None:
        """Experiments will train on this version, under `alias` ("train", "test", ...)."""
        self._transport.platform(
            "POST",
            self._path + "/ct/datasets",
            json={"dataset_version_id": _id_of(dataset_version), "alias": alias},
        )

    def detach_dataset_version_from_continuous_training(
        self, dataset_version: Union[DatasetVersion, Identifier]
    ) -> None:
        self._transport.platform(
            "DELETE", self._path + "/ct/datasets", json={"dataset_version_id": _id_of(dataset_version)}
        )

    def toggle_continuous_training(self, active: bool) -> None:
        self._transport.platform("PUT", self._path + "/pipeline/ct", json={"active": bool(active)})

    def setup_continuous_deployment(self, policy: Union[ContinuousDeploymentPolicy, str]) -> None:
        """Choose what becomes of each model version continuous training produces: champion, shadow, or nothing."""
        self._transport.platform(
            "POST", self._path + "/pipeline/cd", json={"policy": member_of(ContinuousDeploymentPolicy, policy).value}
        )

    def toggle_continuous_deployment(self, active: bool) -> None:
        self._transport.platform("PUT", self._path + "/pipeline/cd", json={"active": bool(active)})


    # Review campaigns

    def create_campaign(
        self,
        description: Optional[str] = None,
        instructions_file_path: Optional[Union[str, Path]] = None,
        instructions_text: Optional[str] = None,
        end_date: Any = None,
        auto_add_new_assets: Optional[bool] = False,
        auto_close_on_completion: Optional[bool] = False,
    ) -> ReviewCampaign:
        """Make a review campaign over the deployment's predicted assets (add them with `add_assets`)."""
        fields = {
            "description": description,
            "instructions_text": instructions_text,
            "end_date": end_date.isoformat() if hasattr(end_date, "isoformat") else end_date,
            "auto_add_new_assets": bool(auto_add_new_assets),
            "auto_close_on_completion": bool(auto_close_on_completion),
        }
        fields = {key: value for key, value in fields.items() if value is not None}
        if instructions_file_path is None:
            info = self._transport.platform("POST", self._path + "/campaigns", json=fields)
        else:
            path = Path(instructions_file_path)
            form: Multipart = [(key, (None, _flag(value) if isinstance(value, bool) else str(value)))
                               for key, value in fields.items()]
            form.append(("instructions_file", (path.name, path.read_bytes())))
            info = self._transport.platform("POST", self._path + "/campaigns", files=form)
        return ReviewCampaign(self._transport, info)

    def get_campaign(self) -> ReviewCampaign:
        """The deployment's newest open campaign (else its newest one); NotFoundError when it has none."""
        items = self._transport.platform("GET", self._path + "/campaigns")["items"]
        if not items:
            raise NotFoundError(f"deployment {self.name!r} has no review campaign")
        chosen = next((item for item in items if item.get("status") == "OPEN"), items[0])
        return ReviewCampaign(self._transport, self._transport.platform("GET", f"/api/campaigns/review/{chosen['id']}"))


@contextmanager
def _as_invalid_query() -> Iterator[None]:
    """Report a 400 from the asset query endpoints as InvalidQueryError, keeping the server's message."""
    try:
        yield
    except InvalidQueryError:
        raise
    except BadRequestError as error:
        raise InvalidQueryError(
            error.message, status_code=error.status_code, errors=error.errors, payload=error.payload
        ) from error


def _raw(prediction: Prediction) -> Dict[str, Any]:
    if isinstance(prediction, PredictionFormat):
        return prediction.to_dict()
    if isinstance(prediction, Mapping):
        return dict(prediction)
    raise TypeError(f"a prediction must be a PredictionFormat or a dict, not {type(prediction).__name__}")


def _one_shadow(
    shadow_prediction: Optional[Prediction], shadow_raw_predictions: Optional[Prediction]
) -> Optional[Prediction]:
    if shadow_prediction is not None and shadow_raw_predictions is not None:
        raise ValueError("give shadow_prediction or its older name shadow_raw_predictions, not both")
    return shadow_prediction if shadow_prediction is not None else shadow_raw_predictions


def _prediction_fields(
    *,
    latency: float,
    height: int,
    width: int,
    prediction: Prediction,
    tags: TagsGiven,
    timestamp: Optional[Timestamp],
    shadow_latency: Optional[float],
    shadow_prediction: Optional[Prediction],
) -> Dict[str, Any]:
    """The fields every monitored prediction carries, whatever says which image it was made on."""
    if shadow_prediction is not None and shadow_latency is None:
        raise ValueError("a shadow prediction needs its shadow_latency")
    fields: Dict[str, Any] = {
        "height": height,
        "width": width,
        "raw_predictions": _raw(prediction),
        "latency": latency,
    }
    optional = {
        "tags": tag_names(tags) if tags is not None else None,
        "timestamp": _epoch(timestamp),
        "shadow_latency": shadow_latency if shadow_prediction is not None else None,
        "shadow_raw_predictions": _raw(shadow_prediction) if shadow_prediction is not None else None,
    }
    fields.update({key: value for key, value in optional.items() if value is not None})
    return fields


def _tags_form(tags: TagsGiven) -> Multipart:
    # One form field per tag, as HTML forms send a multiple select.
    return [("tags", (None, name)) for name in tag_names(tags)]


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _epoch(timestamp: Optional[Timestamp]) -> Optional[float]:
    if timestamp is None:
        return None
    return timestamp.timestamp() if isinstance(timestamp, datetime) else float(timestamp)


def _joined_ids(items: Any) -> Optional[str]:
    """Comma-separated ids of predicted assets given as a list, or as one asset or id."""
    if items is None:
        return None
    if isinstance(items, (str, uuid.UUID, PredictedAsset, Mapping)):
        items = [items]
    return ",".join(_id_of(item) for item in items)


def _id_of(item: Referenced) -> str:
    if isinstance(item, Mapping):
        return str(item["id"])
    identifier = getattr(item, "id", None)
    return str(identifier) if identifier is not None else str(item)
