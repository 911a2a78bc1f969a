"""Posture profiles (YAML data, one per regulation); a package so the files ship with soc."""
