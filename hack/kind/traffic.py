"""Sends credit applications from the German Credit data to the API, normal or drifted.

Used by the Tiltfile's "traffic" and "drifted-traffic" buttons; runs with the standard library
only. Rows are posted in batches to /api/v1/predict/batch. With --drift, applicants are older
and ask for more money (age +25 years, credit amount x3), which the drift job should detect.
It first waits (--wait seconds) for the API to answer /readyz: Tilt's port-forward starts a
moment after the API's pod is ready, and `tilt ci` runs the traffic button right then.

    python3 hack/kind/traffic.py --url http://127.0.0.1:8000 --rows 600 [--drift]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "app/src/credit_api/data/germancredit.csv"
NUMERIC = {
    "duration_in_month",
    "installment_rate_in_percentage_of_disposable_income",
    "present_residence_since",
    "age_in_years",
    "number_of_existing_credits_at_this_bank",
    "number_of_people_being_liable_to_provide_maintenance_for",
}
MAX_AGE = 120


def applications(seed: int) -> list[dict[str, object]]:
    """Every row of the data set as an API request body (without the label), shuffled."""
    with DATA.open(newline="") as source:
        rows = list(csv.DictReader(source))
    result: list[dict[str, object]] = []
    for row in rows:
        row.pop("creditability", None)
        body: dict[str, object] = {k: int(v) if k in NUMERIC else v for k, v in row.items()}
        body["credit_amount"] = float(row["credit_amount"])
        result.append(body)
    random.Random(seed).shuffle(result)
    return result


def drifted(application: dict[str, object]) -> dict[str, object]:
    """Older applicants asking for larger credits."""
    age = application["age_in_years"]
    amount = application["credit_amount"]
    if not isinstance(age, int) or not isinstance(amount, float):
        raise TypeError(f"unexpected age {age!r} or credit amount {amount!r}")
    return {**application, "age_in_years": min(age + 25, MAX_AGE), "credit_amount": amount * 3}


def batches(
    items: list[dict[str, object]], rows: int, size: int
) -> Iterator[list[dict[str, object]]]:
    """`rows` applications (cycling through the data if needed) in batches of `size`."""
    chosen = [items[i % len(items)] for i in range(rows)]
    for start in range(0, len(chosen), size):
        yield chosen[start : start + size]


def post(url: str, batch: list[dict[str, object]], timeout: float) -> dict[str, object]:
    request = urllib.request.Request(  # noqa: S310 - main() admits http(s) URLs only
        f"{url.rstrip('/')}/api/v1/predict/batch",
        data=json.dumps({"applications": batch}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        answer: dict[str, object] = json.load(response)
        return answer


def wait_ready(url: str, seconds: float) -> bool:
    """Whether GET /readyz answered 200 within `seconds` (asked every half second)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(f"{url.rstrip('/')}/readyz", timeout=5) as response:  # noqa: S310
                if response.status == 200:
                    return True
        except (urllib.error.URLError, TimeoutError, ConnectionError):
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the API's base URL")
    parser.add_argument("--rows", type=int, default=600, help="applications to send")
    parser.add_argument("--batch-size", type=int, default=50, help="applications per request")
    parser.add_argument("--drift", action="store_true", help="older applicants, larger credits")
    parser.add_argument("--pause", type=float, default=0.1, help="seconds between requests")
    parser.add_argument("--seed", type=int, default=7, help="shuffle seed")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    parser.add_argument(
        "--wait", type=float, default=60.0, help="seconds to wait for the API to be ready"
    )
    args = parser.parse_args(argv)
    if not args.url.startswith(("http://", "https://")):
        parser.error("--url must be an http:// or https:// URL")
    if args.rows < 1 or args.batch_size < 1:
        parser.error("--rows and --batch-size must be at least 1")

    if not wait_ready(args.url, args.wait):
        print(f"traffic: {args.url}/readyz not ready in {args.wait:.0f} s", file=sys.stderr)
        return 1
    items = applications(args.seed)
    if args.drift:
        items = [drifted(item) for item in items]
    decisions: dict[str, int] = {}
    sent = 0
    for batch in batches(items, args.rows, args.batch_size):
        try:
            answer = post(args.url, batch, args.timeout)
        except (urllib.error.URLError, TimeoutError) as error:
            print(f"traffic: POST to {args.url} failed after {sent} rows: {error}", file=sys.stderr)
            return 1
        predictions = answer.get("predictions")
        if not isinstance(predictions, list):
            print(f"traffic: unexpected answer from {args.url}: {answer}", file=sys.stderr)
            return 1
        for prediction in predictions:
            decision = str(prediction["decision"])
            decisions[decision] = decisions.get(decision, 0) + 1
        sent += len(batch)
        time.sleep(args.pause)
    kind = "drifted" if args.drift else "normal"
    print(f"traffic: sent {sent} {kind} applications to {args.url}; decisions {decisions}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
