"""The evaluation report of a run directory (clause 9.5): html, md, json (zhian.report/1) and JUnit XML.

`zhian.report.write.write_report` is the entry point for other code. This file imports nothing on
purpose: `zhian.verdicts` reads waivers through `zhian.report.waivers`, and the report reads verdict
files through `zhian.verdicts`, so the package itself must not pull the two into a cycle.
"""
