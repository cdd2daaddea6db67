# Parse OpenMetrics text from standard input with the prometheus_client
# library's strict OpenMetrics parser and print one JSON line per sample:
# {"name": ..., "labels": {...}, "value": ...}. Exits non-zero when the
# text does not parse.
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

for family in text_string_to_metric_families(sys.stdin.read()):
    for sample in family.samples:
        print(json.dumps({"name": sample.name, "labels": sample.labels, "value": sample.value}))
