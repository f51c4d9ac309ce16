"""The dashboard: a page of plain HTML, CSS and JavaScript modules (``static/``) served by the API process at ``/``,
reading only the public read API. plotly.js comes from the ``plotly`` wheel, never from a CDN."""
