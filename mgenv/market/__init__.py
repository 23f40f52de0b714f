"""Market stage: actions to orders, clearing, bilateral matching and settlement."""

from mgenv.market.clearing import Clearing, clear_uniform_price, match_bilateral

__all__ = ["Clearing", "clear_uniform_price", "match_bilateral"]
