"""Active linkage tests: set off a trigger (a fire alarm in a panel zone, an intruder before a
perimeter camera), time every effect the site's integration must produce, then put everything back.

One test serves several probes (fetch once, judge many): the five fire_linkage probes of a panel
share one PanelRun, the three intrusion_linkage probes of a camera one LinkageRun. A panel's test
sets off one zone after another, each zone a LinkageRun of its own, restored before the next zone
starts: every zone with an expected effect (doors, cameras or lighting relays in its area, or the
panel's own emergency lighting and broadcast) on monitoring runs, the run's 7.4 sample of them on
inspections (ProbeSpec.members, params.sample), or only the zone `zone` names. A trigger's run keeps,
for each expected target, when zhian first saw the effect, on zhian's clock from the trigger. Every
delay is an upper bound (effects are polled every poll_s) and never flatters the site: the trigger
time is taken just before the command that raises the alarm (remote) or at the last panel reading
that still showed the zone quiet (guided). Each effect is observed until its own deadline plus
grace_s, so that a late effect is told from a missing one.

A finding's facts (JSON, drawn by the report): one trigger's facts are `trigger_at`, `deadline_s`
(the judged effect's), `timeline` (every watched effect: target, status, delay_s, deadline_s),
`targets` (the judged effect's rows), `restore` and `outcome`, `zone`, `area`. An intrusion finding's
facts are one trigger's. A fire finding's facts are the panel's: `effect`, `zone_sample` (mode,
members, picked, and the 7.4 rule and seed on inspections), `restore_complete`, and `zones`, one
trigger's facts per zone tested, in order, each with that zone's own `status`, `reason` and `detail`.
The panel's verdict is its worst zone's (fail, then error, then not assessed; a zone with nothing
to show the effect does not count), a pass only when no zone did worse.

Safety first: nothing is set off while the panel already shows an alarm (it may be a real fire);
the panel is reset only while the tested zone is the only one in alarm; zhian never commands a door,
a camera or a lighting relay (MQTT is read-only). Whatever the site's own reset does not put back (a
door left unlocked, a camera alarm, a relay left on) is recorded and handed to the operator when one
is on site, never forced: a door is not force-locked, since someone may be using it to get out. The
restore always runs, also when the test is cancelled, bounded by restore_timeout_s.
"""
