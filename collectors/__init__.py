"""Protocol clients (ONVIF, ISAPI/HTTP, Modbus, MQTT): typed data and raw exchanges, no indicators."""
