"""The text layer: escaping what came from GitLab in each dialect the bot writes (GitLab Markdown, Slack mrkdwn,
plain text), the escaped-string type, the one sandboxed template environment, scanning the final body for
hazards, hidden markers, and how durations read."""
