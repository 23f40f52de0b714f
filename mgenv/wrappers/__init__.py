"""Views of the market env for single-agent Gymnasium users and for SB3 vector training."""
