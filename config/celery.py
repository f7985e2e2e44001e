"""The Celery app. The beat schedule lives in settings (CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import setup_logging

from config.logging import keep_django_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("bullpen")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The worker logs through settings.LOGGING (LOG_FORMAT, LOG_LEVEL), not its own format.
setup_logging.connect(keep_django_logging, weak=False)
