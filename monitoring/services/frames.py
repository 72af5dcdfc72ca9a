"""The per-frame work a worker does for each monitored frame once it is stored: its thumbnail, then its score."""
from django.conf import settings

from dashboard.models import PredictedAsset
from dashboard.services.datalake import data_open, data_thumbnail_make
from monitoring.services.outliers import asset_outlier_score
from monitoring.services.stats import stats_mark_stale, stats_refresh_soon


def predicted_asset_process(*, asset: PredictedAsset, thumbnail: bool = True) -> None:
    """The thumbnail of the frame's data (when the frame brought new data, `thumbnail`), then its outlier score,
    from a single read of the image, then a refresh of the stats rollups.

    The score is computed even when the thumbnail fails; a retry redoes only what is missing (a thumbnail is made
    once, stored features are reused).
    """
    content = None
    try:
        if thumbnail and not asset.data.thumbnail:
            with data_open(asset.data) as file:
                content = file.read()
            data_thumbnail_make(data=asset.data, size=settings.LOUPE_THUMBNAIL_SIZE, content=content)
    finally:
        try:
            asset_outlier_score(asset=asset, content=content)
        finally:
            # Features and score (or what of them exists) change what the asset adds to the stats rollups.
            stats_mark_stale(deployment_id=asset.deployment_id, asset_ids=[asset.pk])
            stats_refresh_soon(deployment_id=asset.deployment_id)
