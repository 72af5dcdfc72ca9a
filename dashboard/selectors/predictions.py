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


def asset_predictions(asset: PredictedAsset) -> AssetPredictions:
    """The asset's champion and shadow predictions, read from its prefetched predictions when it has them."""
    by_role = {prediction.is_shadow: prediction for prediction in asset.predictions.all()}
    return AssetPredictions(champion=by_role.get(False), shadow=by_role.get(True))
