"""The Drift v2 venue on driftpy (see docs/DRIFT_VENUE.md)."""
