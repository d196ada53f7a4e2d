"""Admin pages for provisioning templates and bulk provisioning jobs."""
