"""Review history; the current reviewed shapes live on the predicted asset in the core."""
