"""The Lua scripts, installed as the package ``app.lua`` so they travel inside the distribution.

``app/store/scripts.py`` reads them through :mod:`importlib.resources`, which finds them in a
checkout, an editable install and a wheel alike.
"""
