"""The campaign dashboard, served by the receiver under ``/ui/``.

Plain HTML, CSS and JavaScript files, no build step and nothing fetched from
elsewhere, so it works offline: each page is one shared layout around its own
body (``templates/``, assembled once by ``pages``); the scripts and the style
sheet are served as they are (``static/``). Pages sign in with an API key
(``sessions``), call the REST API for every action, and watch live views
pushed by server-sent events (``views``); charts are drawn as SVG by
``static/charts.js`` from the counts ``charts`` computes.
"""
