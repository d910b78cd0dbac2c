from drift_job.sampling import SMALL_REFERENCE_ROWS, comparison_rows


def test_a_small_reference_caps_the_sample_at_its_own_size() -> None:
    assert comparison_rows(50_000, 800) == 800
    assert comparison_rows(500, 800) == 500
    assert comparison_rows(50_000, SMALL_REFERENCE_ROWS) == SMALL_REFERENCE_ROWS


def test_a_large_reference_leaves_max_rows_as_the_bound() -> None:
    assert comparison_rows(50_000, SMALL_REFERENCE_ROWS + 1) == 50_000
    assert comparison_rows(50_000, 200_000) == 50_000
