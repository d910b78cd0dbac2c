from __future__ import annotations

from fastapi.testclient import TestClient

from credit_api.bundle import ModelBundle


def test_model_card(client: TestClient, trained_bundle: ModelBundle) -> None:
    card = client.get("/api/v1/model").json()
    assert (card["name"], card["version"]) == ("credit-score", "1")
    assert card["metrics"] == trained_bundle.metrics
    assert card["metrics"]["roc_auc"] >= 0.75
    assert len(card["features"]) == 20
    by_name = {f["name"]: f for f in card["features"]}
    assert by_name["age_in_years"] == {
        "name": "age_in_years",
        "kind": "numerical",
        "categories": None,
    }
    assert "rent" in by_name["housing"]["categories"]
    assert card["decision_shares"] == {"good": 0.7, "bad": 0.3}
    assert (card["training_rows"], card["test_rows"]) == (800, 200)
