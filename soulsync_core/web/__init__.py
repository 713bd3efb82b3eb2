"""The web UI's static files (HTML, CSS, JavaScript modules), served by :mod:`soulsync_core.api.web`."""
