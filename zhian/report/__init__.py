"""The evaluation report of a run directory (clause 9.5): html, md, json (zhian.report/1) and JUnit XML.

`zhian.report.write.write_report` is the entry point for other code.
"""
