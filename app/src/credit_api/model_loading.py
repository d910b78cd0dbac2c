"""Find the model bundle, or train it on a fresh machine, and make it ready to score."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

from credit_api.bundle import ModelBundle, bundle_exists, bundle_path, load_bundle, save_bundle
from credit_api.config import Settings
from credit_api.scoring import LinearScorer, compile_linear_scorer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    """A bundle and the fast scorer compiled from (and checked against) its pipeline."""

    bundle: ModelBundle
    scorer: LinearScorer

    @property
    def name(self) -> str:
        return self.bundle.name

    @property
    def version(self) -> str:
        return self.bundle.version


def obtain_bundle(settings: Settings) -> ModelBundle:
    """The configured bundle; trained into the model directory first when it is missing.

    Training takes a second or two and is deterministic, so a fresh machine gets the same
    model a built image carries, without a binary pickle in the repository.
    """
    name, version, model_dir = settings.model_name, settings.model_version, settings.model_dir
    if not bundle_exists(model_dir, name, version):
        if not settings.train_if_missing:
            raise FileNotFoundError(
                f"no model bundle at {bundle_path(model_dir, name, version)} "
                "(run `credit-api train` or set CREDIT_API_TRAIN_IF_MISSING=true)"
            )
        from credit_api.training import MODEL_NAME, train  # noqa: PLC0415 - only when needed

        if name != MODEL_NAME:
            raise FileNotFoundError(
                f"no bundle for model {name!r}, and only {MODEL_NAME!r} trains here"
            )
        log.warning(
            "no model bundle at %s: training %s version %s now",
            bundle_path(model_dir, name, version),
            name,
            version,
        )
        save_bundle(train(version=version), model_dir)
    return load_bundle(model_dir, name, version)


def load_model(settings: Settings) -> LoadedModel:
    bundle = obtain_bundle(settings)
    scorer = compile_linear_scorer(bundle.pipeline)
    # The reference sample is the training data: both scorers must agree on all of it.
    scorer.check_against(bundle.pipeline, pd.DataFrame.from_records(list(bundle.reference)))
    log.info("loaded %s version %s from %s", bundle.name, bundle.version, settings.model_dir)
    return LoadedModel(bundle, scorer)
