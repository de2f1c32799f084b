"""The Velocity venue (Drift's successor): see docs/VELOCITY_VENUE.md."""
