"""The REST API under ``/api/v1/`` and the personal API tokens that open it.

Views are thin: they resolve the space through ``spaces.selectors`` (the one
place that decides who may do what), read through the selectors and write
through the services of the app that owns the data.
"""
