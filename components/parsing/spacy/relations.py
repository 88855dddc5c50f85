"""Relations between the objects (the second pass of the graph builder).

Four patterns, each between object nodes (see components/parsing/spacy/__init__.py):
prepositions, relational-noun phrases, adverb + preposition, and verb + object; a verb
without an object, a predicate adjective and a postnominal state become attributes.
"""

from __future__ import annotations

from typing import Any

from components.parsing.scene_graph import Relation, SceneGraph, SceneObject
from components.parsing.spacy.lexicon import (
    ANAPHORA,
    CLAUSE_DEPS,
    COMPLEMENT_DEPS,
    COPULAS,
    POSTNOMINAL_STATES,
    QUANTITY_NOUNS,
)
from components.parsing.spacy.misparsed_modifiers import (
    article_participle_noun,
    is_misparsed_participle,
    participle_object,
    relational_attributes,
)
from components.parsing.spacy.misread_nouns import hung_subject, is_misread_verb
from components.parsing.spacy.nouns import (
    conjuncts,
    distributed,
    is_misread_part,
    is_reciprocal,
    is_relational,
    is_worn_colour,
    misread_part,
    of_object,
)
from components.parsing.spacy.objects import ObjectCollector
from components.parsing.spacy.predicates import (
    PREDICATE_ALIASES,
    absolute_pronoun,
    bare_coordinated_verb,
    completes_verb,
    find_subjects,
    governing_verb,
    is_misread_particle,
    is_negated_predicate,
    is_verb,
    verb_phrase,
)


class GraphBuilder(ObjectCollector):
    """Objects, then the relations and states between them: a Doc's whole scene graph."""

    def collect_relations(self) -> None:
        for token in self.doc:
            if token.dep_ in ("prep", "agent") or is_misread_particle(token):
                self._preposition(token)
            elif (
                token.dep_ in ("dobj", "dative", "oprd")
                and is_verb(token.head)
                and not is_negated_predicate(token.head)
            ):
                self._verb_object(token)
            elif (
                token.dep_ == "acomp"
                and token.pos_ == "ADJ"
                and not (is_negated_predicate(token) or is_negated_predicate(token.head))
            ):
                for subject in self._subjects(token.head):
                    self._add_attribute(subject, token.lower_)
            if is_worn_colour(token) and not is_negated_predicate(token.head):
                wearer = token.head.head if token.dep_ == "pobj" else token.head
                subjects = self._subjects(wearer) if is_verb(wearer) else [wearer]
                for subject in subjects:
                    self._add_attribute(subject, token.lower_)
            self._state(token)
            self._verb_state(token)
        self._share_coordinated_relations()

    def _verb_object(self, token: Any) -> None:
        """The relation from a verb's subjects to its object ``token``."""
        verb = governing_verb(token.head)
        if verb is None:
            return
        predicate = verb_phrase(verb)
        reached = [(predicate, obj) for obj in distributed(token)]
        if is_relational(token):  # "sprays the inside of a toilet (and a sink)"
            whole = of_object(token)
            located = [] if whole is None else distributed(whole)
            reached = [(f"{predicate} {token.lower_} of", w) for w in located] + reached[1:]
        for subject in self._subjects(verb):
            for said, obj in reached:
                if obj.i in self.chained:  # "wearing [vest] catching [disc]"
                    worn, participle = self.chained[obj.i]
                    self._add(subject, said, worn)
                    self._add(subject, participle.lower_, obj)
                else:
                    self._add(subject, said, obj)

    def _state(self, token: Any) -> None:
        """A state adjective after its noun is an attribute of it, like a predicate one.

        "a boy asleep on a bed" vs "a boy awake on a bed": outside the noun chunk the
        adjective was lost and both captions gave one graph. Only a closed list of state
        adjectives, without complements of their own ("a cart full of bananas" relates the
        cart to the bananas; "full" stays out), so misparses ("a fire hydrant" with
        "hydrant" as an adjective of "fire") add nothing.
        """
        if (
            token.dep_ == "amod"
            and token.i > token.head.i
            and token.lower_ in POSTNOMINAL_STATES
            and not any(True for _ in token.children)
        ):
            self._add_attribute(token.head, token.lower_)

    def _verb_state(self, token: Any) -> None:
        """A verb without an object is a state of its subject: an attribute (GOLD_RULES.md).

        "A boy smiling" and "a boy frowning" gave one graph: a verb reached the graph only
        as a relation's predicate, so one without an object was lost. Visual Genome keeps
        such states as attributes (man [standing]), and so do we, also when a phrase locates
        the verb ("a dog sitting on a bench": dog [sitting], dog sitting on bench), so the
        state does not vanish when a place is added. A verb with an object, a clause, an
        infinitive or an adjective ("wearing a hat", "ready to be served", "gets ready")
        gives a relation, or its adjective is the attribute.
        """
        if token.pos_ == "VERB":
            # an absolute "with snow FALLING" is a clause too: its subject is its own
            absolute = token.dep_ == "pobj" and any(c.dep_ == "nsubj" for c in token.children)
            if token.dep_ not in CLAUSE_DEPS and not absolute:
                return
        elif not is_misread_verb(token):
            return
        if (
            token.lower_ in COPULAS
            or is_negated_predicate(token)
            or is_misparsed_participle(token)
            or any(
                c.dep_ in COMPLEMENT_DEPS or (c.dep_ == "aux" and c.tag_ == "TO")
                for c in token.children
            )
        ):
            return
        state = verb_phrase(token)
        for subject in self._subjects(token):
            node = self._node(subject, None)  # "as he walks": the pronoun's referent
            if node is not None:
                self._attribute_of(node, state)

    def _share_coordinated_relations(self) -> None:
        """ "a kitchen with red tile and white cabinets": the tile is in the kitchen too."""
        for head, inner in self.coordinated:
            for r in list(self.relations):
                if head in (r.subject, r.object):
                    s = inner if r.subject == head else r.subject
                    o = inner if r.object == head else r.object
                    if s != o and Relation(s, r.predicate, o) not in self.relations:
                        self.relations.append(Relation(s, r.predicate, o))

    def _preposition(self, prep: Any) -> None:
        """A preposition's relation: from whatever it hangs on to its pobj (or the 'of' noun)."""
        if (
            prep.lower_ == "of"
            and prep.head.i in self.node_of
            and prep.head.lower_ in (QUANTITY_NOUNS)
        ):
            return  # "a group of people": folded, not a relation
        if prep.lower_ == "of" and (is_relational(prep.head) or is_misread_part(prep.head)):
            return  # the "of" inside "to the left of": handled from the outer preposition
        described_noun = article_participle_noun(prep.head)
        if described_noun is not None and described_noun.head.i == prep.i:
            return  # the "in" of "a fenced in area": part of the participle
        objects = [c for c in prep.children if c.dep_ in ("pobj", "pcomp")]
        if not objects:
            return
        # "on sparkling SAND", "in a fenced in AREA"
        target = participle_object(objects[0]) or article_participle_noun(objects[0]) or objects[0]
        pronoun = absolute_pronoun(prep, target)
        if pronoun is not None:
            if prep.head.i in self.node_of and pronoun.lower_ in ("it", "them"):
                self.referent[pronoun.i] = prep.head.i  # "a table with a pen on IT"
            return
        reciprocal = is_reciprocal(target)
        words = [prep.lower_]
        misread = misread_part(target)
        if misread is not None:  # "on the velvety back of a sofa": sofa [velvety]
            words += [misread.lower_, "of"]
            described, target = target, of_object(misread)
            self._add_attribute(target, described.lower_)
        elif is_relational(target):
            described = relational_attributes(target)  # "the SMUDGED side of a train"
            words += [
                t.lower_
                for t in target.lefts
                if t.dep_ in ("amod", "compound") and t not in described
            ]
            words += [target.lower_, "of"]
            target = of_object(target)
            if target is None:  # "in front of building windows": 'of' with no pobj parsed
                return
            for word in described:
                self._add_attribute(target, word.lower_)
        anchor = prep.head
        if anchor.dep_ == "advmod" and anchor.pos_ in ("ADV", "ADJ"):
            words.insert(0, anchor.lower_)  # "next to", "close to", "ahead of"
            anchor = anchor.head
        elif (
            anchor.pos_ == "ADJ"
            and anchor.dep_ in ("amod", "acomp")
            and prep.lower_
            in (
                "to",
                "of",
            )
        ):
            words.insert(0, anchor.lower_)  # "next to" parsed as an adjective
            anchor = anchor.head
        elif (
            anchor.pos_ == "ADJ"
            and anchor.dep_ in ("acl", "advcl", "xcomp", "oprd")
            and prep.lower_ != "of"  # "a street EMPTY of men": the adjective's complement
        ):
            anchor = anchor.head  # "sitting cross LEGGED in front of a mirror": the sitter
        anchor, passed, outer = self._attachment(anchor, prep)
        words = passed + words  # "peeking out FROM under some covers"
        predicate = " ".join(words)
        predicate = PREDICATE_ALIASES.get(predicate, predicate)
        if is_verb(anchor) and is_negated_predicate(anchor):
            return
        if is_verb(anchor):
            verb = verb_phrase(anchor)
            base = predicate
            if verb and completes_verb(anchor, outer):
                predicate = f"{verb} {predicate}"
            subjects = self._subjects(anchor)
            bare = bare_coordinated_verb(anchor)
            if bare is not None and predicate != base:
                # "walking and skiing around the snow": walking around the snow too.
                shared = f"{verb_phrase(bare)} {base}"
                if reciprocal:
                    self._add_reciprocal(subjects, shared)
                for subject in [] if reciprocal else subjects:
                    for obj in distributed(target):
                        self._add(subject, shared, obj)
        else:
            subjects = [anchor]
        if reciprocal:
            self._add_reciprocal(subjects, predicate)
            return
        for subject in subjects:
            for obj in distributed(target):
                self._add(subject, predicate, obj)

    def _attachment(self, anchor: Any, prep: Any) -> tuple[Any, list[str], Any]:
        """The node or verb a phrase locates when the model hung it on a word that is
        neither, with the prepositions passed on the way and the outermost one.

        "a red fire hydrant ON a sidewalk": "hydrant" a modifier of the node "fire"; "a
        clock set to twenty after three IN a field": "three" a number; "a dog peeking out
        from UNDER some covers": "under" hangs on "from". Clauses and predicate adjectives
        ("the door is open with the light on") are not climbed out of.
        """
        if prep.lower_ == "of" and anchor.pos_ != "ADP":
            return anchor, [], prep  # "one OF the players": partitive, nothing to locate
        token, passed, outer = anchor, [], prep
        stacked = True  # prepositions directly above the phrase's own one are part of it
        for _ in range(4):
            if token.i in self.node_of or is_verb(token):
                return token, passed, outer
            if (
                token.pos_ not in ("NOUN", "PROPN", "NUM", "PRON", "ADP", "ADJ")
                or token.dep_ in ("acl", "relcl", "advcl", "xcomp", "ccomp", "acomp", "ROOT")
                or token.lower_ in ANAPHORA
            ):
                break
            stacked = stacked and token.pos_ == "ADP"
            if stacked:
                passed.insert(0, token.lower_)
                outer = token
            token = token.head
        return anchor, [], prep

    def _add_reciprocal(self, subjects: list[Any], predicate: str) -> None:
        """ "a man and a girl next to each other": man next to girl; "two men next to each
        other": one man next to another, a second instance of the plural subject (a graph
        has no self-relations)."""
        if len(subjects) == 1:  # "a man and a WOMAN sitting next to each other"
            first = subjects[0]
            while first.dep_ == "conj" and first.head is not first:
                first = first.head
            subjects = conjuncts(first) if first.i != subjects[0].i else subjects
        if len(subjects) > 1:
            self._add(subjects[0], predicate, subjects[1])
            return
        node = self.node_of.get(subjects[0].i) if subjects else None
        if (
            node is None
            or subjects[0].tag_ not in ("NNS", "NNPS")
            and not any(a in self.objects[node].attributes for a in QUANTITY_NOUNS)
        ):
            return
        other = len(self.objects)
        self.objects.append(self.objects[node])
        if not self.objects[node].negated:
            self.relations.append(Relation(node, predicate, other))

    def _subjects(self, verb: Any) -> list[Any]:
        """Nouns a verb's relations start from: its nsubj, the noun it modifies, or attr."""
        if verb.i not in self.subjects_of:
            self.subjects_of[verb.i] = find_subjects(verb, self.node_of)
        return self.subjects_of[verb.i]

    def _node(self, token: Any, other: int | None) -> int | None:
        """The node a token names; "it"/"him"/... the caption's first object, its topic."""
        if token.i in self.node_of:
            return self.node_of[token.i]
        if token.i in self.referent:
            return self.node_of[self.referent[token.i]]
        hung = hung_subject(token)  # "talking on a PHONE sitting next to glasses"
        if hung is not None and hung.i in self.node_of:
            return self.node_of[hung.i]
        if token.lower_ in ANAPHORA and token.pos_ == "PRON":
            for node, obj in enumerate(self.objects):
                if node != other and not obj.negated:
                    return node
        return None

    def _add(self, subject: Any, predicate: str, obj: Any) -> None:
        if obj is None or not predicate:
            return
        s = self.node_of.get(subject.i)
        o = self._node(obj, s)
        s = self._node(subject, o) if s is None else s
        if s is None or o is None or s == o:
            return
        if self.objects[s].negated or self.objects[o].negated:
            return  # an absent object takes part in no relation
        relation = Relation(s, predicate, o)
        if relation not in self.relations:
            self.relations.append(relation)

    def _add_attribute(self, subject: Any, attribute: str) -> None:
        node = self.node_of.get(subject.i)
        if node is not None:
            self._attribute_of(node, attribute)

    def _attribute_of(self, node: int, attribute: str) -> None:
        obj = self.objects[node]
        if attribute not in obj.attributes:
            self.objects[node] = SceneObject(obj.name, (*obj.attributes, attribute), obj.negated)

    def graph(self) -> SceneGraph:
        return SceneGraph(tuple(self.objects), tuple(self.relations))
