"""zhian: machine evidence and an auxiliary score (clause 7.2) for T/CREA 智慧住区安全防范安全评价."""

__version__ = "0.1.0"
