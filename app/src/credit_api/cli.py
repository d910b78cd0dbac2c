"""`credit-api train` writes the model bundle; `credit-api serve` runs the API with uvicorn."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from credit_api.config import Settings, describe_settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="credit-api",
        description=__doc__,
        epilog=f"settings (environment variables):\n{describe_settings()}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train the model and write its bundle")
    train.add_argument("--model-dir", type=Path, help="default: CREDIT_API_MODEL_DIR")
    train.add_argument("--version", help="bundle version (default: CREDIT_API_MODEL_VERSION)")
    train.add_argument("--seed", type=int, default=None, help="split seed (default 42)")

    serve = commands.add_parser("serve", help="serve the API (one uvicorn worker)")
    serve.add_argument("--host", help="default: CREDIT_API_HOST (127.0.0.1)")
    serve.add_argument("--port", type=int, help="default: CREDIT_API_PORT (8000)")

    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"credit-api: invalid settings:\n{error}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "train":
        return _train(settings, args.model_dir, args.version, args.seed)
    return _serve(settings, args.host, args.port)


def _train(
    settings: Settings, model_dir: Path | None, version: str | None, seed: int | None
) -> int:
    from credit_api.bundle import save_bundle  # noqa: PLC0415 - scikit-learn only when needed
    from credit_api.training import DEFAULT_SEED, train  # noqa: PLC0415

    bundle = train(
        version=version or settings.model_version, seed=DEFAULT_SEED if seed is None else seed
    )
    path = save_bundle(bundle, model_dir or settings.model_dir)
    print(json.dumps({"bundle": str(path), "version": bundle.version, "metrics": bundle.metrics}))
    return 0


def _serve(settings: Settings, host: str | None, port: int | None) -> int:
    import uvicorn  # noqa: PLC0415

    from credit_api.main import create_app  # noqa: PLC0415

    uvicorn.run(
        create_app(settings),
        host=host or settings.host,
        port=port or settings.port,
        log_level=settings.log_level,
        access_log=settings.access_log,
        # The process exits within the prediction log's flush deadline.
        timeout_graceful_shutdown=int(settings.log_shutdown_timeout_seconds) + 5,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
