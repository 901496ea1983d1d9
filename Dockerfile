# incident-bot: webhook receiver (gunicorn) and reconcile worker in one container.
#
#   docker build -t incident-bot .
#   docker run -d --name incident-bot -p 8080:8080 -v incident-bot-data:/data --stop-timeout 30 \
#     -e GITLAB_URL=https://gitlab.example.com -e GITLAB_TOKEN=... -e GITLAB_WEBHOOK_SECRET=... \
#     -e INCIDENT_BOT_SCOPE=acme/security-incidents \
#     -v "$PWD/my-policy:/policy:ro" -e INCIDENT_BOT_CONFIG=/policy/bot.yaml incident-bot
#
# Your policy: mount a directory holding it and point INCIDENT_BOT_CONFIG at the file (the image has no policy
# of its own to run: serve refuses to start without one). Templates are the
# bundled ones unless the policy sets `templates_dir` (relative to the policy file, e.g. `templates_dir:
# templates` for my-policy/templates/*.md.j2). Check it first, then run with the same two options:
#
#   docker run --rm -v "$PWD/my-policy:/policy:ro" -e INCIDENT_BOT_CONFIG=/policy/bot.yaml incident-bot \
#     incident-bot check-config
#
# Put a TLS-terminating proxy or ingress in front of it (see docs/webhook-setup.md, deploy/nginx-tls.conf). The receivers are
# gevent workers with header and read timeouts, so slow or idle clients cannot stall intake even when the
# port is reachable directly.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only what the wheel is built from; the bundled policy and templates go into the package.
COPY pyproject.toml README.md constraints.txt /src/
COPY bot /src/bot
COPY config /src/config
COPY issue_templates /src/issue_templates
# constraints.txt pins every dependency to the versions the test suite ran with.
RUN pip install --constraint /src/constraints.txt /src \
    && rm -rf /src \
    && useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin incident-bot \
    && install -d -m 0700 -o incident-bot -g incident-bot /data

USER incident-bot
WORKDIR /data

# The SQLite delivery store: accepted deliveries and queued work survive restarts and upgrades.
ENV INCIDENT_BOT_DB=/data/incident-bot.sqlite3
VOLUME ["/data"]

EXPOSE 8080
# serve drains on SIGTERM: receivers finish their requests, the worker its current reconcile (up to 20 s).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]

CMD ["incident-bot", "serve", "--host", "0.0.0.0", "--worker-class", "gevent", "--read-timeout", "5"]
