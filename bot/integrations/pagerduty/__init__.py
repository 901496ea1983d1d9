"""Paging the on-call people the plan pages, through PagerDuty's Events API v2.

``config`` parses the policy's ``integrations: {pagerduty: ...}`` section and reads each target's routing
key; ``plan`` computes, purely, the events an incident wants (trigger / resolve, one per target and
generation); ``adapter`` sends one event with PagerDuty's own client (its retries off: the durable queue
decides); ``webhook`` verifies and parses PagerDuty's V3 webhooks (acknowledged / resolved). ``integration``
registers it on the seam; ``job`` plans and sends on the job loop, ``facts`` and ``command`` are what the
GitLab side shows and accepts, ``receiver`` is ``POST /pagerduty``.
"""
