"""Facebook Messenger: the page webhook in, the Send API out."""
