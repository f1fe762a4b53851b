"""`python -m workers.matching [--markets A-B,C-D]` (or `python manage.py run_matching ...`): the
matching worker process (wiring only).

SIGTERM or SIGINT stops it cleanly: the batch in hand is committed, what it has to publish is
sent, and closing the lock connection hands its markets to a standby at once.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal


def main(argv: list[str] | None = None) -> None:
    # Handlers first: a stop asked for while Django loads still ends in a clean exit.
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    parser = argparse.ArgumentParser(description="Clearway matching worker")
    parser.add_argument("--markets", default="", help="comma-separated symbols (default: all)")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get("MATCHING_METRICS_PORT", "9465")),
        help="Prometheus metrics on 127.0.0.1 (0: none)",
    )
    parser.add_argument(
        "--log-batches", action="store_true", help="log one DEBUG line per committed batch"
    )
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings")
    import django

    from exchange.envvars import exit_on_config_error

    with exit_on_config_error():
        django.setup()
    from prometheus_client import start_http_server

    from exchange.matching_worker.publish import BackgroundPublisher
    from exchange.matching_worker.runner import Worker

    if args.log_batches:
        logging.getLogger("exchange.matching_worker.batches").setLevel(logging.DEBUG)
    if args.metrics_port:
        start_http_server(args.metrics_port, addr="127.0.0.1")
        logging.getLogger(__name__).info("metrics on 127.0.0.1:%s", args.metrics_port)
    symbols = [s for s in args.markets.split(",") if s] or None
    publisher = BackgroundPublisher()
    # Everything loaded so far lives as long as the process: keep the collector off it, and
    # collect the young generation less often (a batch allocates thousands of short-lived
    # objects; the book's orders are long-lived).
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    worker = Worker(symbols, batch_size=args.batch_size, publish=publisher.submit, pipeline=True)
    try:
        worker.run(lambda: stopping)
    finally:
        publisher.close()


if __name__ == "__main__":
    main()
