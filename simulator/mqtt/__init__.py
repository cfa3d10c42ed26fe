"""The site's MQTT side: the broker and the device gateways that report through it."""
