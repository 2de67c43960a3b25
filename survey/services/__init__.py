"""Use cases: plain functions that do one piece of database work in one transaction."""
