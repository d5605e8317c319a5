"""`python -m playground_tools.fake_vllm`: run the fake vLLM server in the foreground."""

from playground_tools.fake_vllm import main

raise SystemExit(main())
