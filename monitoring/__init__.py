"""The ML leads' app: monitored predictions in, per-frame work, outlier scores against a reference, stats and drift."""
