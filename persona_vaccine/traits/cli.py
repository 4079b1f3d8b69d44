"""`launch.py trait`: list the built-in trait specs, show one, or generate a new one with an LLM."""

from __future__ import annotations

import argparse
import time

from persona_vaccine.cli_args import ArgumentParser, command_name, prog
from persona_vaccine.paths import TRAIT_SPEC_DIR
from persona_vaccine.traits import describe_spec, load_trait_spec, trait_listing


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog=prog("trait"), description=__doc__.split(": ", 1)[1])
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser(
        "list", help=f"built-in traits (and specs in {TRAIT_SPEC_DIR}/) with their description"
    )
    show = actions.add_parser("show", help="counts, instruction pairs and first questions of a spec")
    show.add_argument("name_or_path", help="a built-in trait name or a spec JSON file")
    new = actions.add_parser(
        "new",
        help="ask an LLM for a new spec (pairs, 20+20 questions, rubric); validated and retried",
        description="Generate a trait spec with an LLM. Keys: $OPENAI_API_KEY (openai; optional with "
        "--base_url for a local server) or $ANTHROPIC_API_KEY (anthropic); hf runs a local model.",
    )
    add = new.add_argument
    add("name", help="lowercase trait name, e.g. curious or power_seeking")
    add("description", help="one sentence or paragraph describing the behaviour")
    add("--backend", required=True, choices=("openai", "anthropic", "hf"))
    add("--model", help="model name for openai/anthropic (required); hf: id or path (default smollm2-135m)")
    add("--base_url", default=None, help="OpenAI-compatible endpoint (default $OPENAI_BASE_URL)")
    add("--output", default=None, help=f"spec file to write (default {TRAIT_SPEC_DIR}/NAME.json)")
    add("--retries", type=int, default=3, help="new tries after an invalid answer (default 3)")
    add("--force", action="store_true", help="overwrite an existing output file")
    return parser


def cli(argv: list[str]) -> int:
    """Run `launch.py trait list | show NAME | new NAME DESCRIPTION --backend B`."""
    opts = _parser().parse_args(argv)
    if opts.action == "list":
        print("\n".join(trait_listing(TRAIT_SPEC_DIR)))
        return 0
    if opts.action == "show":
        print(describe_spec(load_trait_spec(opts.name_or_path)))
        return 0
    from persona_vaccine.traits import generation as tg

    output = tg.spec_output(opts.name, opts.output, opts.force, TRAIT_SPEC_DIR)
    backend = tg.make_backend(opts.backend, opts.model, opts.base_url)
    start = time.perf_counter()
    spec = tg.generate_trait_spec(opts.name, opts.description, backend, retries=opts.retries)
    tg.write_spec(spec, output)
    print(
        f"wrote {output}: {len(spec.instruction_pairs)} instruction pairs, {len(spec.extraction_questions)} "
        f"extraction and {len(spec.evaluation_questions)} evaluation questions "
        f"({time.perf_counter() - start:.0f}s with {opts.backend})"
    )
    print(
        f"review it ({command_name()} trait show {output}), then: {command_name()} extract --trait {output}"
    )
    return 0
