"""The admins' data pipeline: the feedback loop that turns reviews into training data (then training and deployment)."""
