"""Corruptions of a batch and the suite that scores a model under each, at graded strengths."""
