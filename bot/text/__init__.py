"""Text safety: escaping what came from GitLab, scanning the final body for hazards, hidden markers, templates
and the Safe string type."""
