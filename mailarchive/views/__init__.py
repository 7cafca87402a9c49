"""The reading pages of the archive: mail lists, messages, threads, search, trash.

``mail`` serves lists, messages, threads and their files; ``search``, ``trash``
and ``preferences`` the rest. Every space page goes through ``space_required``.
"""
