"""The lead store's schema revisions, oldest first by their `down_revision` links."""
