"""The API's views, one module per subject; ``base`` holds what they share."""
