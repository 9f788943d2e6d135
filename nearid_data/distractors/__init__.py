"""Near-identity distractors: generators, concept choice, compositing and QA."""
