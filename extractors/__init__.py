"""Where raw records come from: MySQL replica, Kafka topic, JSON files (and SQLite for the sandbox)."""
