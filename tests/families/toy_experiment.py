"""The toy examples-unit experiment, as a user's experiment file that brings its own family."""

from toy_family import SIZES, get_config

__all__ = ["SIZES", "get_config"]
