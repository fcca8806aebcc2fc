"""``vitalgate ingest``: run ingest workers (MQTT shared subscription -> store).

Example::

    vitalgate ingest --broker mqtt://broker:1883 --store influxdb1://influx:8086/vitalgate \\
        --group ingest --workers 2

Each worker is one MQTT client (client id ``<client-id-prefix>-<n>``, stable across restarts so
its persistent session resumes) with its own store connection, all in one process and one
event loop; run several processes (different ``--client-id-prefix``) to use more cores.
SIGTERM / SIGINT stop gracefully: what was received is written and acknowledged first.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
from contextlib import ExitStack

from vitalgate.cloud_sync.ingest import IngestWorker, parse_broker_url
from vitalgate.cloud_sync.stores import open_store, redact_url
from vitalgate.errors import ConfigError

__all__ = ["register", "run_ingest"]

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "ingest",
        help="consume readings from MQTT and write them to the store",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--broker", required=True, help="mqtt://[user[:pw]@]host:port or mqtts://...")
    p.add_argument(
        "--store",
        required=True,
        help="sqlite:///path.db | influxdb1://host:port/db | influxdb2://host:port?org=&bucket="
        " | victoriametrics://host:port (see vitalgate.cloud_sync.stores)",
    )
    p.add_argument("--group", default="vitalgate-ingest", help="shared subscription group")
    p.add_argument(
        "--protocol", type=int, choices=(5, 311), default=5, help="MQTT protocol (default 5)"
    )
    p.add_argument(
        "--no-shared",
        dest="shared",
        action="store_false",
        help="plain subscription (one worker; brokers without shared subscriptions, MQTT 3.1.1)",
    )
    p.add_argument("--workers", type=int, default=1, help="workers (MQTT clients) in this process")
    p.add_argument(
        "--client-id-prefix",
        default=None,
        help="client ids are <prefix>-<n>; default vitalgate-ingest-<group>-<hostname>",
    )
    p.add_argument("--batch", type=int, default=5000, help="readings per store write")
    p.add_argument("--linger-ms", type=float, default=50.0, help="max wait to fill a batch")
    p.add_argument(
        "--writes-in-flight",
        type=int,
        default=3,
        help="store writes a worker keeps going at once (acknowledged in order)",
    )
    p.add_argument("--receive-maximum", type=int, default=1000, help="unacked messages in flight")
    p.add_argument("--max-pending", type=int, default=200_000, help="readings held in memory")
    p.add_argument("--session-expiry-s", type=int, default=7 * 86_400)
    p.add_argument(
        "--identity-property",
        default=None,
        help="MQTT 5 user property in which a trusted broker plugin names the publisher",
    )
    p.add_argument("--ca-file", default=None, help="CA bundle for mqtts://")
    p.add_argument("--cert-file", default=None, help="client certificate for mqtts://")
    p.add_argument("--key-file", default=None, help="client key for mqtts://")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise ConfigError("workers", "must be at least 1")
    return asyncio.run(run_ingest(args))


async def run_ingest(args: argparse.Namespace) -> int:
    broker = parse_broker_url(
        args.broker, ca_file=args.ca_file, cert_file=args.cert_file, key_file=args.key_file
    )
    prefix = args.client_id_prefix or f"vitalgate-ingest-{args.group}-{socket.gethostname()}"
    with ExitStack() as stack:
        workers: list[IngestWorker] = []
        for n in range(args.workers):
            store = open_store(args.store)
            stack.callback(store.close)
            workers.append(
                IngestWorker(
                    args.broker,
                    store,
                    args.group,
                    client_id=f"{prefix}-{n}",
                    batch_max_readings=args.batch,
                    linger_s=args.linger_ms / 1000,
                    writes_in_flight=args.writes_in_flight,
                    receive_maximum=args.receive_maximum,
                    max_pending_readings=max(args.max_pending, args.batch),
                    session_expiry_s=args.session_expiry_s,
                    identity_property=args.identity_property,
                    broker=broker,
                    protocol=args.protocol,
                    shared=args.shared,
                )
            )

        def stop_all() -> None:
            for w in workers:
                w.stop()

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop_all)
        log.info(
            "ingest: %d worker(s) in group %r, broker %s:%d, store %s",
            len(workers),
            args.group,
            broker.host,
            broker.port,
            redact_url(args.store),
        )
        async with asyncio.TaskGroup() as tg:
            for w in workers:
                tg.create_task(w.run())
        for w in workers:
            log.info("ingest %s: %s", w.client_id, w.stats.as_dict())
    return 0
