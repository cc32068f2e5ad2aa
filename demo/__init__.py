"""`conductor demo`: the seed story of the release-orchestration pattern, played against the bundled Octopus
simulator and checked through its REST API.

- `stage`: the simulator, the intake (with its live view), a worker, the reconciler and the promotion scheduler,
  in one process;
- `act_promotion`, `act_new_server`, `act_schedule`: the story's three acts;
- `story`, `approval_checks`, `narration`, `cast`: what the acts share;
- `command`: the `conductor demo` command, which the CLI finds through the `release_conductor.commands` entry
  point, so that nothing in `service/` or `workers/` imports this package.
"""
