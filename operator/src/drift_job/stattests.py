"""The statistical tests Evidently 0.7 offers for tabular drift, and how to read their scores.

Evidently names a test by its display name when it picks the test itself (`K-S p_value`) and by
its id when the caller sets it (`ks`), so the table knows both. A p-value test finds drift when
the score is below the threshold; a distance finds drift when the score is at or above it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ScoreKind = Literal["p_value", "distance"]
ColumnKind = Literal["numerical", "categorical"]


@dataclass(frozen=True)
class StatTest:
    id: str
    display_name: str
    score: ScoreKind
    kinds: frozenset[ColumnKind]


_NUM: frozenset[ColumnKind] = frozenset({"numerical"})
_CAT: frozenset[ColumnKind] = frozenset({"categorical"})
_BOTH: frozenset[ColumnKind] = frozenset({"numerical", "categorical"})

STAT_TESTS: tuple[StatTest, ...] = (
    StatTest("anderson", "Anderson-Darling", "p_value", _NUM),
    StatTest("chisquare", "chi-square p_value", "p_value", _CAT),
    StatTest("cramer_von_mises", "Cramer-von Mises", "p_value", _NUM),
    StatTest("ed", "Energy-distance", "distance", _NUM),
    StatTest("empirical_mmd", "empirical_mmd", "p_value", _NUM),
    StatTest("es", "Epps-Singleton", "p_value", _NUM),
    StatTest("fisher_exact", "Fisher's Exact test", "p_value", _CAT),
    StatTest("g_test", "g_test", "p_value", _CAT),
    StatTest("hellinger", "Hellinger distance", "distance", _BOTH),
    StatTest("jensenshannon", "Jensen-Shannon distance", "distance", _BOTH),
    StatTest("kl_div", "Kullback-Leibler divergence", "distance", _BOTH),
    StatTest("ks", "K-S p_value", "p_value", _NUM),
    StatTest("mannw", "Mann-Whitney U-rank test", "p_value", _NUM),
    StatTest("psi", "PSI", "distance", _BOTH),
    StatTest("t_test", "t_test", "p_value", _NUM),
    # Despite its name, Evidently's TVD test returns a p-value.
    StatTest("TVD", "Total-Variation-Distance", "p_value", _CAT),
    StatTest("wasserstein", "Wasserstein distance (normed)", "distance", _NUM),
    StatTest("z", "Z-test p_value", "p_value", _CAT),
)

_BY_NAME: dict[str, StatTest] = {
    **{test.id: test for test in STAT_TESTS},
    **{test.display_name: test for test in STAT_TESTS},
}

METHOD_IDS: tuple[str, ...] = tuple(test.id for test in STAT_TESTS)


def find_stattest(name: str) -> StatTest:
    """The test Evidently names `name` (an id or a display name); KeyError when unknown."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown statistical test {name!r}") from None


def is_drifted(score: float, threshold: float, kind: ScoreKind) -> bool:
    """P-values drift below the threshold; distances drift at or above it."""
    if kind == "p_value":
        return score < threshold
    return score >= threshold
