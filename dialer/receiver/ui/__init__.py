"""The campaign dashboard, served by the receiver under ``/ui/``.

Plain HTML, CSS and JavaScript files (``static/``), no build step and nothing
fetched from elsewhere, so it works offline. Pages sign in with an API key
(``sessions``), call the REST API for every action, and watch live views
pushed by server-sent events (``views``); charts are drawn as SVG by
``static/charts.js`` from the counts ``charts`` computes.
"""
