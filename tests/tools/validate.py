"""Checks FHIR R4 JSON files with an independent implementation: the `fhir.resources`
package, pinned (by `cargo xtask test`) to its FHIR R4 (4.0.1) models.

Usage: validate.py FILE...   Each FILE is a Bundle. The Bundle must parse as a whole, and so
must every entry's resource on its own, by its resourceType. Prints one line per file;
exits 1 when anything does not parse.
"""
import json
import sys

import fhir.resources
from fhir.resources import construct_fhir_element

if fhir.resources.__fhir_version__ != "4.0.1":
    sys.exit(f"fhir.resources models FHIR {fhir.resources.__fhir_version__}, not R4 4.0.1")

failed = False
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        bundle = json.load(f)
    problems = []
    try:
        construct_fhir_element("Bundle", bundle)
    except Exception as e:  # the validator's own message names the element
        problems.append(f"Bundle: {e}")
    counts = {}
    for i, entry in enumerate(bundle.get("entry", [])):
        resource = entry.get("resource", {})
        rtype = resource.get("resourceType", "?")
        counts[rtype] = counts.get(rtype, 0) + 1
        try:
            construct_fhir_element(rtype, resource)
        except Exception as e:
            problems.append(f"entry {i} ({rtype}): {e}")
    if problems:
        failed = True
        print(f"{path}: INVALID")
        for p in problems[:20]:
            print("  " + p.replace("\n", "\n  "))
    else:
        total = sum(counts.values())
        print(f"{path}: valid R4, {total} resources {json.dumps(counts, sort_keys=True)}")
sys.exit(1 if failed else 0)
