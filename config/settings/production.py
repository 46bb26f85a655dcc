"""The settings `make run` and gunicorn use."""

from config.settings.base import *  # noqa: F403
