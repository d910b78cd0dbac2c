"""The demo's traffic: real applications, and a drifted population that really differs."""

from __future__ import annotations

from statistics import mean

from demo.traffic import applications, drifted_traffic, normal_traffic


def test_applications_are_the_real_data_as_json_native_values() -> None:
    apps = applications()
    assert len(apps) == 1000
    assert set(type(v) for a in apps for v in a.values()) <= {int, float, str}
    assert "creditability" not in apps[0]


def test_normal_traffic_is_reproducible_and_drawn_from_the_data() -> None:
    assert normal_traffic(50, seed=3) == normal_traffic(50, seed=3)
    assert all(a in applications() for a in normal_traffic(20))


def test_drifted_traffic_is_older_and_asks_for_more() -> None:
    normal, drifted = normal_traffic(500), drifted_traffic(500)
    assert min(a["age_in_years"] for a in drifted) > 45
    assert mean(a["credit_amount"] for a in drifted) > 1.5 * mean(
        a["credit_amount"] for a in normal
    )
    assert all(1 <= a["duration_in_month"] <= 120 for a in drifted)
