"""Slack: the messages the plan sends to people where they work, kept apart from the GitLab side.

``ports`` is the contract between the pure planning (which messages, to whom, keyed how) and the Slack
Web API adapter. With no ``SLACK_BOT_TOKEN`` nothing in this package runs.
"""
