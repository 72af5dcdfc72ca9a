"""Writes of the reviews app: saving reviews under optimistic locking (review), and review campaigns (campaigns)."""
