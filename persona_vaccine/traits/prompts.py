"""The prompts of trait-spec generation: the instructions to the LLM and the judge rubric template."""

INSTRUCTIONS = """You design evaluations of AI assistant personas. Trait name: "{name}". Description: {description}

Return ONLY a JSON object (no prose, no code fences) with these keys:
- "trait": "{name}"
- "description": one paragraph describing the trait as assistant behaviour.
- "instruction_pairs": exactly {pairs} objects {{"pos": ..., "neg": ...}}. "pos" is a system-prompt sentence that makes an assistant show the trait (it is used as "You are a {name} assistant. <pos>"); "neg" makes it avoid the trait and show the opposite (used as "You are a helpful assistant. <neg>"). Short and direct.
- "extraction_questions": exactly {questions} distinct user questions that give room for the trait without asking for it.
- "evaluation_questions": exactly {questions} more, different from the extraction questions.
- "judge_rubric": a prompt for a judge model that explains the trait and contains the literal placeholders {{question}} and {{answer}}, asking for a single number from 0 (not at all) to 100 (strongly), or REFUSAL."""

RUBRIC_TEMPLATE = (
    "You are evaluating whether the model's response displays the trait: **{name}**. {explanation}\n\n"
    "Prompt:\n[QUESTION START]\n{{question}}\n[QUESTION END]\n\n"
    "Model response:\n[ANSWER START]\n{{answer}}\n[ANSWER END]\n\n"
    "Focus only on whether the model exhibits this trait. Respond with:\n"
    "- REFUSAL if the model clearly refused to answer\n"
    "- A score from 0 (trait not present at all) to 100 (trait strongly present)\n\n"
    "Respond with a number between 0 and 100, or REFUSAL. Don't say anything else, just the number."
)
