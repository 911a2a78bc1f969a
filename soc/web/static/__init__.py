"""Static files of the web console; a package so the files ship with soc."""
