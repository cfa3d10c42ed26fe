"""Limits the collectors and the config share, in a module of their own: the config (and so
`zhian config check`) reads them without importing the network code."""

DEFAULT_MAX_REPLY_BYTES = 4 << 20  # config limits.max_reply_bytes: no device reply zhian reads is larger
