"""The plan phase: a suite file read into a frozen Suite, and what a run decides before it generates."""
