"""Tests of inference.text."""
