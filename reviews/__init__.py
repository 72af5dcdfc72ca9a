"""The labeling team's app: review queue, review tool, review history and the feedback-loop action."""
