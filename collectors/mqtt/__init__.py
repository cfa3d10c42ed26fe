"""MQTT client for a site's broker: passive observation windows, the monitor's long-lived
subscription and single login trials (aiomqtt/paho), plus the gateways' topic shapes as data.

zhian only reads on MQTT. It never publishes: a message on a site's broker can switch a relay or
raise an alarm, so this client has no publish at all. Each operation is one MQTT session of its
own (connect, work, DISCONNECT) and leaves its Exchanges:

- `client`: MqttClient, the operations below on one Connection.
- `session`: connecting (TLS when the Connection has a context), the cancellation-safe aiomqtt
  life cycle, the subscription both readers share, and the evidence every operation records.
- `window`: `observe(filters, window_s)` tallies what arrives for a window, bounded in memory.
- `follow`: `follow(filters, ...)`, the monitor's subscription that lives until cancelled.
- `messages`: the typed results (Received, TopicSummary, Observation, LoginResult).
- `errors`: how a library exception becomes the collectors' closed set of errors.
- `profile` and `profiles/`: a gateway's topic shape (zhian, zigbee2mqtt, Home Assistant, a
  site's own file), validated at load and compiled into a matcher.
"""
