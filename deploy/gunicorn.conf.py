"""gunicorn settings for a production host: `gunicorn -c deploy/gunicorn.conf.py wsgi:app`.

Every setting can be overridden from the environment (GUNICORN_WORKERS, GUNICORN_BIND, ...).
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
# Requests are short (a survey page, a few statements); reports stream.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
# Streamed exports of a million rows take longer than a page view.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then so slow leaks cannot accumulate.
max_requests = 5000
max_requests_jitter = 500
# Load the app once, in the master, and fork the workers from it: a new or recycled worker starts
# at once instead of importing the app again (seconds of CPU taken from the running workers) and
# shares the loaded code's memory. Each worker opens its own database connections
# (survey.extensions drops the inherited ones after the fork). New code takes a restart of the
# service; a HUP only restarts the workers, on the code already loaded.
preload_app = True
# The proxy in front terminates TLS and sets X-Forwarded-*; trust only it.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = "-"
errorlog = "-"
