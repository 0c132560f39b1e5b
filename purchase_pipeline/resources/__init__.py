"""Resources: the seams between the assets and the outside world.

One interface per concern (object store, catalog, crawler, query engine, Firehose publisher),
each with a local implementation here and an AWS one beside it. Assets only use the interfaces.
"""
