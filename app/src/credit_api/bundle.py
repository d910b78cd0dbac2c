"""The versioned model bundle: the fitted pipeline, its input schema, metrics and reference.

Layout: `<model_dir>/<name>/<version>/` holding `pipeline.joblib` (the scikit-learn pipeline),
`card.json` (schema, metrics, threshold, decision shares, library versions) and
`reference.json` (the training features, registered in the store for drift detection).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import sklearn
from sklearn.pipeline import Pipeline

from credit_api.features import NEGATIVE_CLASS, POSITIVE_CLASS
from prediction_store import FeatureSpec, ModelRegistration, ReferenceOutput

log = logging.getLogger(__name__)

PIPELINE_FILE = "pipeline.joblib"
CARD_FILE = "card.json"
REFERENCE_FILE = "reference.json"


class BundleError(RuntimeError):
    """The bundle is missing, incomplete or unreadable."""


@dataclass(frozen=True)
class ModelBundle:
    name: str
    version: str
    pipeline: Pipeline
    features: tuple[FeatureSpec, ...]
    metrics: Mapping[str, float]
    decision_threshold: float
    decision_shares: Mapping[str, float]
    reference: Sequence[Mapping[str, Any]]
    training_rows: int
    test_rows: int

    def registration(self, reference_scores: Sequence[float]) -> ModelRegistration:
        """What the prediction store keeps about this version: its reference sample with the
        model's own scores and decisions on it (`reference_scores`, one per row, in order), so
        the drift job can compare the model's output too. The registered decision shares are
        those of the model's decisions on the reference (what the decision-ratio alert compares
        live traffic with), not the training labels' shares of the card."""
        decisions = [
            POSITIVE_CLASS if score >= self.decision_threshold else NEGATIVE_CLASS
            for score in reference_scores
        ]
        shares = {
            decision: decisions.count(decision) / len(decisions) if decisions else 0.0
            for decision in (NEGATIVE_CLASS, POSITIVE_CLASS)
        }
        return ModelRegistration(
            name=self.name,
            version=self.version,
            features=self.features,
            reference=self.reference,
            metrics=self.metrics,
            decision_shares=shares,
            positive_class=POSITIVE_CLASS,
            decision_threshold=self.decision_threshold,
            reference_outputs=[
                ReferenceOutput(float(score), decision)
                for score, decision in zip(reference_scores, decisions, strict=True)
            ],
        )


def bundle_path(model_dir: Path, name: str, version: str) -> Path:
    return model_dir / name / version


def bundle_exists(model_dir: Path, name: str, version: str) -> bool:
    path = bundle_path(model_dir, name, version)
    return all((path / f).is_file() for f in (PIPELINE_FILE, CARD_FILE, REFERENCE_FILE))


def save_bundle(bundle: ModelBundle, model_dir: Path) -> Path:
    """Write the bundle atomically: readers see all of it or none of it.

    The files go to a temporary sibling directory which is then renamed into place; when
    another process got there first, its (identical, training is deterministic) bundle wins.
    """
    target = bundle_path(model_dir, bundle.name, bundle.version)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{bundle.version}-", dir=target.parent))
    try:
        joblib.dump(bundle.pipeline, staging / PIPELINE_FILE)
        _write_json(staging / CARD_FILE, _card(bundle))
        _write_json(staging / REFERENCE_FILE, list(bundle.reference))
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if bundle_exists(model_dir, bundle.name, bundle.version):
            log.info("bundle %s was written concurrently; keeping that one", target)
            return target
        raise
    return target


def load_bundle(model_dir: Path, name: str, version: str) -> ModelBundle:
    path = bundle_path(model_dir, name, version)
    if not bundle_exists(model_dir, name, version):
        raise BundleError(f"no complete model bundle at {path}")
    try:
        card = json.loads((path / CARD_FILE).read_text())
        reference = json.loads((path / REFERENCE_FILE).read_text())
        pipeline = joblib.load(path / PIPELINE_FILE)
    except Exception as error:  # unpickling a damaged file can raise nearly anything
        raise BundleError(f"cannot read the model bundle at {path}: {error}") from error
    if not isinstance(pipeline, Pipeline):
        raise BundleError(f"{path / PIPELINE_FILE} holds {type(pipeline).__name__}, not a Pipeline")
    if card["name"] != name or card["version"] != version:
        raise BundleError(f"{path} holds {card['name']} version {card['version']}")
    return ModelBundle(
        name=card["name"],
        version=card["version"],
        pipeline=pipeline,
        features=tuple(FeatureSpec.from_json(f) for f in card["features"]),
        metrics={k: float(v) for k, v in card["metrics"].items()},
        decision_threshold=float(card["decision_threshold"]),
        decision_shares={k: float(v) for k, v in card["decision_shares"].items()},
        reference=reference,
        training_rows=int(card["training_rows"]),
        test_rows=int(card["test_rows"]),
    )


def _card(bundle: ModelBundle) -> dict[str, Any]:
    return {
        "name": bundle.name,
        "version": bundle.version,
        "features": [spec.to_json() for spec in bundle.features],
        "metrics": dict(bundle.metrics),
        "decision_threshold": bundle.decision_threshold,
        "decision_shares": dict(bundle.decision_shares),
        "training_rows": bundle.training_rows,
        "test_rows": bundle.test_rows,
        "sklearn_version": sklearn.__version__,
    }


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
