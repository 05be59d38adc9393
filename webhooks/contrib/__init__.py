"""Optional integrations with other Django apps, each an app of its own to install."""
