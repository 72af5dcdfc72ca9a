"""Writes of monitoring: ingest of monitored frames, outlier scores, the training-data reference."""
