"""Jinja2 templates of the web console; a package so the files ship with soc."""
