"""incident-bot: makes GitLab follow a security incident communications plan."""

__version__ = "0.1.0"
