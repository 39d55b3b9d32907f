"""Custom actions written with rasa-sdk; run in process or by a Rasa action server."""
