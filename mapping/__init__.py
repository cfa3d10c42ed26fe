"""The indicator catalog of the standard and the rules from probe findings to verdicts, as data."""
