"""The core's pages, for ML leads and admins (and everyone's way in)."""
