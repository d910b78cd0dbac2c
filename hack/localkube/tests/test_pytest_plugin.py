"""The plugin's choices at collection: which tests run first, and whether the session's cluster
gets the machine's node."""

from __future__ import annotations

import textwrap

import pytest

from localkube.pytest_plugin import NODE_KEY

pytest_plugins = ["pytester"]

TESTS = textwrap.dedent(
    """
    import pytest

    def test_plain():
        pass

    @pytest.mark.node
    def test_on_the_node():
        pass

    @pytest.mark.own_node
    def test_with_a_node_of_its_own():
        pass
    """
)
MARKERS = textwrap.dedent(
    """
    [pytest]
    markers =
        node: on the session's node
        own_node: brings up a node of its own
    """
)


def _collect(pytester: pytest.Pytester, *arguments: str) -> tuple[list[str], bool]:
    pytester.makeini(MARKERS)
    pytester.makepyfile(test_choices=TESTS)
    _, recorder = pytester.inline_genitems(*arguments)
    session = recorder.getcalls("pytest_collection_finish")[0].session
    return [item.name for item in session.items], session.config.stash[NODE_KEY]


def test_tests_with_a_node_of_their_own_run_first_and_a_node_test_asks_for_the_node(
    pytester: pytest.Pytester,
) -> None:
    names, node = _collect(pytester)
    assert names == ["test_with_a_node_of_its_own", "test_plain", "test_on_the_node"]
    assert node is True


def test_deselected_node_tests_ask_for_no_node(pytester: pytest.Pytester) -> None:
    names, node = _collect(pytester, "-m", "not node and not own_node")
    assert names == ["test_plain"]
    assert node is False
