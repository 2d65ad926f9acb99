"""The Celery application. Start a worker with:

    celery -A worker.celery_app worker -Q cpu --concurrency 2            # CPU jobs
    celery -A worker.celery_app worker -Q gpu --concurrency 1            # one job per GPU

Reliability settings, chosen on purpose:
- task_acks_late: a job's message is acknowledged when the job ends, not when it starts, so a
  worker that dies mid-job does not lose it;
- task_reject_on_worker_lost: if the process running a job is killed, the message goes back to
  the queue at once instead of being acknowledged;
- worker_prefetch_multiplier=1: a worker holds one job at a time and leaves the rest to idle
  workers (jobs are minutes long; prefetching would starve them);
- visibility_timeout (Redis) longer than the longest job: Redis redelivers a message that is
  unacknowledged for this long; shorter than a job would start a second copy of a healthy job;
- task_time_limit: a stuck job is killed rather than holding its worker forever.
Whatever the broker does, the API stays the judge of a run's state: a second delivery of a
running job is refused there (409) and exits at once, and a silent worker's run is requeued or
failed by the API's reaper (see README, "When a worker dies").
"""

from __future__ import annotations

import logging

from celery import Celery
from kombu import Queue

from worker.config import get_settings
from worker.contract import QUEUES, broker_transport_options

settings = get_settings()

# Celery leaves the root logger alone (worker_hijack_root_logger=False), so fitlens's own lines
# (a task's start and end, retries, failures) get a handler here, at INFO whatever --loglevel.
_fitlens_log = logging.getLogger("fitlens")
if not _fitlens_log.handlers:
    _handler = logging.StreamHandler()
    _handler.setFormatter(logging.Formatter("[%(asctime)s: %(levelname)s/%(name)s] %(message)s"))
    _fitlens_log.addHandler(_handler)
    _fitlens_log.setLevel(logging.INFO)
    _fitlens_log.propagate = False

app = Celery("fitlens", broker=settings.broker_url, include=["worker.tasks"])
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_transport_options={
        "visibility_timeout": settings.task_time_limit + 3600,
        **broker_transport_options(settings.broker_url, settings.broker_dir),
    },
    task_time_limit=settings.task_time_limit,
    task_ignore_result=True,  # results live in the API, not in a result backend
    task_queues=[Queue(name) for name in QUEUES],
    task_default_queue="cpu",
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)
