"""`zhian discover`: a draft inventory of a site, from the network (ONVIF WS-Discovery, ISAPI
device info) and from the device lists platforms export (CSV)."""
