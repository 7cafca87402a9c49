"""Date formats per language (``FORMAT_MODULE_PATH``): one format for dates
and times on every page of a language, whichever way a template shows them."""
