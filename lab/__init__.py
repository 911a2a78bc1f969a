"""Lab: attack scenarios, replay and evaluation."""
