"""Monitoring's pages: the ML leads' overview with its charts (overview), the training-data reference's progress
(training_data), and the alert rules (alerts)."""
