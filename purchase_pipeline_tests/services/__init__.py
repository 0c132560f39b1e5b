"""Services the test suite starts itself, on loopback, and stops after: moto's server (S3,
Glue, Firehose, Athena's API) and a real Trino over it."""
