"""Infrastructure at the bottom of the package: imports nothing from cpt above it."""
