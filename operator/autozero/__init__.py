"""autozero: scale worker groups to zero when idle and back up the moment work arrives."""

__version__ = "0.1.0.dev0"
