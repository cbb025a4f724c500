"""Celery workers: thin glue that claims a job, runs the wgan engine on it and records the outcome."""
