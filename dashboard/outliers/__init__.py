"""Outlier scores of predicted assets: features, the kNN scorer, the services and tasks that keep scores."""
