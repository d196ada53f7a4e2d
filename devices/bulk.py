"""Bulk provisioning from a CSV (Celery task + once-only credential bundle)."""
