"""Writes of the data pipeline: the feedback loop (feedback_loop), continuous training and its experiments
(training), continuous deployment (deployment)."""
