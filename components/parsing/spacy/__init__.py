"""Caption -> SceneGraph by dependency rules over spaCy's parse (sng_parser style).

Nodes are noun chunks with their modifiers folded in as attributes (``amod``, ``compound``,
``nummod`` and coordinated adjectives: "a black and white cat" -> cat [black, white]), so
"a white cat on a red sofa" and "a red cat on a white sofa" give different graphs; a verb
without an object is a state of its subject, also an attribute ("a boy smiling" -> boy
[smiling]).
Relations come from four patterns, each between object nodes:

    noun -prep-> P -pobj-> noun                   "a cat on a sofa"          (on)
    ... P -pobj-> left/front/top -prep-> of -pobj-> noun
                                                  "a cube to the left of a sphere" (left of)
    ... ADV -prep-> P -pobj-> noun                "a dog next to a bench"    (next to)
    subject <-nsubj/acl- VERB -dobj|prep-> noun   "a man riding a horse"     (riding)

A copula is dropped from the predicate ("the cat is on the sofa" -> on) and also covers
the fronted order "to the left of the sphere is a cube". "no X" and "without X" mark the
object ``negated`` and give it no relations, so absence is never read as presence.
Quantity nouns fold into what they count: "a group of people" -> people [group]. Two
misreadings of the small model that put the wrong head in a noun chunk are repaired on a
copy of the Doc before any rule reads it (``repairs.py``).

Modules: ``parser`` (SpacyParser, load_spacy, graph_from_doc: the public API), ``lexicon``
(word lists), ``nouns`` and ``objects`` (the nodes), ``predicates`` and ``relations`` (the
relations and states), and the repairs of the small model's misreadings
(``misparsed_modifiers``, ``misread_nouns``, ``repairs``).
"""
