"""Every exit code zhian uses, in one place (README "Exit codes" lists them the same way)."""

OK = 0  # done: the run completed (whatever the grade), the run verified and its signer is trusted
BROKEN = 1  # verify/export: the evidence does not hold (altered, missing or added)
USAGE = 2  # bad input: config, option, file; nothing was run
UNSEALED = 3  # verify: every record kept holds, but the run was never sealed (`zhian seal --recover`)
UNTRUSTED = 4  # verify: intact and validly signed, by a key this machine does not trust
NO_SPACE = 5  # run: the disk filled (or writing failed); what was written is kept and verifies
FAILED = 6  # run: a step after the probes failed (report, outputs); the evidence is sealed without it
INTERRUPTED = 130  # SIGINT (Ctrl-C): stopped cleanly, the site restored, what was collected sealed
TERMINATED = 143  # SIGTERM: the same
