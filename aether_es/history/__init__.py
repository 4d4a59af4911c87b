"""What the event log is for besides running: replay and verification, time travel, history export and import."""
