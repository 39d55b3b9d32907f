"""Natural-language understanding: read Rasa-format data, normalise, classify, parse."""
