"""How often the fairness alert fires where there is nothing to find (`make bench-fairness`).

The German Credit data's 1000 applications, decided by the credit model (trained as the API
trains it), are judged with the example ModelMonitor's fairness (three protected attributes,
the four-fifths rule, 30 rows per group at least), by the drift job's own code, as its CronJob
passes it. First as they are: the model's real disparities. Then 20 times with the protected
attributes randomly relabelled: each applicant's attributes shuffled to another applicant, so
group and decision are independent and any disparity found is a false alarm made by chance in
small groups. Target: at most 1 false alarm in 20.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from credit_api.data import load_german_credit
from credit_api.features import FEATURE_NAMES
from credit_api.training import train
from drift_job.fairness import assess_fairness
from drift_job.fairness_config import FairnessConfig
from drift_job.findings import FairnessResult
from modelmonitor.render.cronjob import drift_job_args
from modelmonitor.spec import parse_monitor
from prediction_store import DECISION_COLUMN

EXAMPLE = Path(__file__).parents[2] / "manifests" / "examples" / "credit-score-monitor.yaml"
TARGET = 1


def example_fairness() -> FairnessConfig:
    """The example monitor's fairness, exactly as its CronJob hands it to the job."""
    manifest = yaml.safe_load(EXAMPLE.read_text())
    manifest["metadata"]["namespace"] = "credit"
    args = drift_job_args(parse_monitor(manifest))
    return FairnessConfig.model_validate(json.loads(args[args.index("--fairness") + 1]))


def decided_applications() -> pd.DataFrame:
    bundle = train()
    frame = load_german_credit().loc[:, list(FEATURE_NAMES)]
    scores = bundle.pipeline.predict_proba(frame)[:, 1]
    decisions = np.where(scores >= bundle.decision_threshold, "bad", "good")
    return frame.assign(**{DECISION_COLUMN: decisions})


def relabelled(frame: pd.DataFrame, attributes: list[str], seed: int) -> pd.DataFrame:
    """The protected attributes of each row moved to another row, at random, together."""
    order = np.random.default_rng(seed).permutation(len(frame))
    shuffled = frame[attributes].iloc[order].to_numpy()
    return frame.assign(**{name: shuffled[:, i] for i, name in enumerate(attributes)})


def describe(result: FairnessResult) -> str:
    return "; ".join(
        f"{a.feature}: "
        + ", ".join(
            f"{g.name} {g.disparate_impact_ratio:.2f} ({g.rows})"
            for g in a.groups
            if g.disparate_impact_ratio is not None
        )
        + (" DISPARITY" if a.disparity else "")
        for a in result.attributes
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--relabellings", type=int, default=20)
    args = parser.parse_args()
    config = example_fairness()
    attributes = [attribute.feature for attribute in config.attributes]
    frame = decided_applications()
    print(
        f"{len(frame)} applications, favourable decision {config.favourable_decision!r}, "
        f"disparate impact outside [{config.min_disparate_impact_ratio:g}, "
        f"{config.max_disparate_impact_ratio:g}] with >= {config.min_rows_per_group} rows a group"
    )
    print(f"as they are: {assess_fairness(frame, None, config).verdict}")
    print(f"  {describe(assess_fairness(frame, None, config))}")
    alarms = 0
    for seed in range(args.relabellings):
        result = assess_fairness(relabelled(frame, attributes, seed), None, config)
        alarms += result.disparity
        print(f"relabelling {seed + 1:2d}: {result.verdict:9s} {describe(result)}")
    verdict = "met" if alarms <= TARGET else "MISSED"
    print(
        f"false alarms: {alarms} of {args.relabellings} random relabellings "
        f"(target <= {TARGET}: {verdict})"
    )


if __name__ == "__main__":
    main()
