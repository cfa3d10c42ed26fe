"""The evidence archive on PostgreSQL: many communities' sealed runs, kept and re-verifiable for six
years (4.9), and the portfolio an evaluation body works from."""
