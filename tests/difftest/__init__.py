"""Differential testing of dbt against Unicorn (see DIFFERENCES.md)."""
