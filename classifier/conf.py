"""Classifier knobs: a Django setting of the same name wins, else the environment, else the
default. (Tests override them with the `settings` fixture; worker processes get them from the
environment.)"""

import os

from django.conf import settings

DEFAULTS: dict[str, int | str] = {
    "SIEVE_CHUNK_SIZE": 2000,  # items per Celery task: minutes of GPU work, well under the
    # broker's visibility timeout
    "SIEVE_BATCH_SIZE": 64,  # images per forward pass
    "SIEVE_DECODE_WORKERS": min(8, os.cpu_count() or 1),  # DataLoader decode processes
    "SIEVE_CHUNK_STALE_SECONDS": 300,  # a running chunk without heartbeat this long is dead
    "SIEVE_DEVICE": "",  # "", "cpu", "cuda", "cuda:1"
}


def get(name: str):
    default = DEFAULTS[name]
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name, "")
        if value == "":
            return default
    return type(default)(value)
