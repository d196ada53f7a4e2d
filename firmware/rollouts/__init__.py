"""Staged rollouts (issue 13): a firmware version or job template rolled out to a fleet in waves,
each wave one Job of the jobs engine, with gates, a failure policy, silence counted as failure and
health-verified promotion."""
