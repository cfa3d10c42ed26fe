"""The engine `zhian run` and the monitor share: plan probe jobs, run them under limits, keep findings."""
