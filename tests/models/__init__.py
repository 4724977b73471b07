"""Tests of the estimators in pcflow.models."""
