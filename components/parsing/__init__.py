"""Caption -> SceneGraph parsers behind one interface (`get_parser`)."""

from components.parsing.scene_graph import (
    SCENE_GRAPH_TYPE,
    Relation,
    SceneGraph,
    SceneGraphError,
    SceneObject,
)

__all__ = ["SCENE_GRAPH_TYPE", "Relation", "SceneGraph", "SceneGraphError", "SceneObject"]
