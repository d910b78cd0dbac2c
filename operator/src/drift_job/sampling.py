"""How many rows of the current window to compare: a bound on work and on over-sensitivity.

Two bounds apply, and the smaller wins:

* `--max-rows` bounds the work: Evidently on a million rows takes minutes and gigabytes.
* With a small reference (up to 1000 rows, where Evidently's automatic choice is a p-value
  test), the current sample is also capped at the reference's size. Evidently's chi-square is
  a goodness-of-fit test: it takes the reference's proportions as exact, so the reference's
  own sampling noise counts as drift, scaled by the current sample size (its statistic grows
  by about 1 + current/reference). Measured on the German Credit data with an 800-row
  reference and no drift at all: 2 of 20 columns flagged with 800 current rows, 13 of 20 (so
  dataset drift) with 50,000.
"""

from __future__ import annotations

# Evidently's automatic choice switches from p-value tests to distances above this size.
SMALL_REFERENCE_ROWS = 1000


def comparison_rows(max_rows: int, reference_rows: int) -> int:
    """The most current rows to hand to Evidently."""
    if reference_rows <= SMALL_REFERENCE_ROWS:
        return max(1, min(max_rows, reference_rows))
    return max_rows
