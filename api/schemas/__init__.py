"""Request and response models of the API, one module per resource (named as its router).

A model's docstring becomes its description in the OpenAPI document: write one when it tells a client something.
"""
