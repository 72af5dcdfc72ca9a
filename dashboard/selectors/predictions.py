"""Reads of an asset's predictions: which one is the champion's and which the shadow's."""
from dataclasses import dataclass

from dashboard.models import PredictedAsset, Prediction


@dataclass(frozen=True)
class AssetPredictions:
    champion: Prediction | None
    shadow: Prediction | None

    @property
    def champion_shapes(self) -> list[dict]:
        return self.champion.shapes if self.champion is not None else []


ATTACHED = "attached_predictions"  # where predictions_attach leaves an asset's AssetPredictions


def asset_predictions(asset: PredictedAsset) -> AssetPredictions:
    """The asset's champion and shadow predictions: those predictions_attach gave it, else its prefetched (or
    freshly read) predictions."""
    attached = asset.__dict__.get(ATTACHED)
    if attached is not None:
        return attached
    by_role = {prediction.is_shadow: prediction for prediction in asset.predictions.all()}
    return AssetPredictions(champion=by_role.get(False), shadow=by_role.get(True))


def predictions_by_asset(*, assets: list[PredictedAsset]) -> dict:
    """{asset id: AssetPredictions} for a page of assets, in one query. Unlike prefetch_related, the predictions do
    not point back at their assets: a page leaves no reference cycles for the garbage collector's full passes,
    which at 100 assets a page landed in one call of twenty (70 ms each on the reference machine)."""
    found: dict = {asset.pk: {} for asset in assets}
    for prediction in Prediction.objects.filter(asset_id__in=list(found)):
        found[prediction.asset_id][prediction.is_shadow] = prediction
    return {asset_id: AssetPredictions(champion=roles.get(False), shadow=roles.get(True))
            for asset_id, roles in found.items()}


def predictions_attach(assets: list[PredictedAsset]) -> list[PredictedAsset]:
    """Gives each asset of a page its predictions (read in one query, see predictions_by_asset), where
    asset_predictions finds them. The queue's pages and the API's lists read them this way."""
    if assets:
        by_id = predictions_by_asset(assets=assets)
        for asset in assets:
            asset.__dict__[ATTACHED] = by_id[asset.pk]
    return assets
