"""The Celery broker as operators see it: does it answer, how long are its queues.

Works with whichever broker ``CELERY_BROKER_URL`` names: Redis in production
(a queue's length is the LLEN of its lists), the file-system broker of the
one-machine install (the files waiting in its queue folder).
"""

from __future__ import annotations

from kombu import Connection
from kombu.exceptions import ChannelError

from mailarchive.celery import app

# A probe or a scrape waits this long for the broker, never longer.
BROKER_TIMEOUT = 2.0


def _connection() -> Connection:
    options = dict(app.conf.broker_transport_options or {})
    options.update(socket_timeout=BROKER_TIMEOUT, socket_connect_timeout=BROKER_TIMEOUT)
    return Connection(app.conf.broker_url, transport_options=options)


def queue_names() -> list[str]:
    """The queues the archive's workers consume: the default one and any routed."""
    return sorted(app.amqp.queues.keys())


def queue_lengths() -> dict[str, int]:
    """Messages waiting in each queue; raises the broker's error when it is down.

    Reads only; the readiness probe uses it to see that the broker answers.
    """
    lengths: dict[str, int] = {}
    with _connection() as connection:
        connection.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT)
        channel = connection.default_channel
        for name in queue_names():
            try:
                declared = channel.queue_declare(name, passive=True)
            except ChannelError:
                # Redis keeps no empty list: a queue nothing waits in is absent.
                lengths[name] = 0
                channel = connection.channel()
            else:
                lengths[name] = declared.message_count
    return lengths
