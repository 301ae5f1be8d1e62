"""ci/README.md documents every input of every component as the templates declare it."""

import re

from ci import inputs_table
from ci.tests import support


def test_readme_inputs_tables_match_the_templates():
    with open(support.workspace_file("ci/README.md"), encoding="utf-8") as text:
        readme = text.read()
    section = re.search(r"<!-- inputs:begin -->\n(.*)<!-- inputs:end -->", readme, re.S)
    assert section, "ci/README.md lost its <!-- inputs:begin/end --> markers"
    want = inputs_table.render(support.workspace_file("templates"))
    assert section.group(1) == want, \
        "ci/README.md's inputs tables are stale; paste `python3 ci/inputs_table.py` between " \
        "the markers"


def test_readme_shows_each_way_of_including():
    with open(support.workspace_file("ci/README.md"), encoding="utf-8") as text:
        readme = text.read()
    for way in ("- component: $CI_SERVER_FQDN/platform/modelship/pipeline@",
                "- project: platform/modelship", "file: templates/pipeline.yml"):
        assert way in readme
